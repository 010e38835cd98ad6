"""wavenet_core: the seed's WaveNet, mu-law audio, conditioning, training and Fast WaveNet generation."""

from wavenet_core.config import CONFIG_A, CONFIG_B, MelConfig, WaveNetConfig

__all__ = ["CONFIG_A", "CONFIG_B", "MelConfig", "WaveNetConfig"]
