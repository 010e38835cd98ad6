"""wavenet_core.audio.wav."""
