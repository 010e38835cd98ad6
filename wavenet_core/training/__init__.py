"""wavenet_core.training."""
