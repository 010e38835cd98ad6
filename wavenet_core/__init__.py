"""wavenet_core: the seed's WaveNet, mu-law audio, training and Fast WaveNet generation."""

from wavenet_core.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from wavenet_core.model.config import CONFIG_A, CONFIG_B, MelConfig, WaveNetConfig
from wavenet_core.model.wavenet import WaveNet

__all__ = [
    "CONFIG_A", "CONFIG_B", "CheckpointError", "MelConfig", "WaveNet", "WaveNetConfig",
    "load_checkpoint", "save_checkpoint",
]
