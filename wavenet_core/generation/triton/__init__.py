"""wavenet_core.generation.triton."""
