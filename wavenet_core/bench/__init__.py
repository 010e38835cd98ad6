"""wavenet_core.bench."""
