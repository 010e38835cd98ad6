"""wavenet_core: the seed's WaveNet, mu-law audio, training and Fast WaveNet generation."""

from wavenet_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from wavenet_core.config import CONFIG_A, CONFIG_B, MelConfig, WaveNetConfig
from wavenet_core.model import WaveNet

__all__ = [
    "CONFIG_A", "CONFIG_B", "CheckpointError", "MelConfig", "WaveNet", "WaveNetConfig",
    "load_checkpoint", "save_checkpoint",
]
