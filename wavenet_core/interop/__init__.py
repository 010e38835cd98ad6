"""wavenet_core.interop."""
