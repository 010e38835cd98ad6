"""wavenet_core.generation.torch."""
