"""wavenet_core.text."""
