"""wavenet_core.model.wavenet."""
