"""wavenet_core.generation.cpu."""
