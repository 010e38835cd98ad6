"""WaveNetConfig: every number that shapes a model, with a JSON round trip.

The config travels inside each checkpoint (safetensors metadata), so a checkpoint
alone is enough to rebuild its model.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MelConfig:
    """Log-mel analysis parameters (librosa / HiFi-GAN convention, Slaney mel filters)."""

    n_mels: int = 80
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    fmin: float = 0.0
    fmax: float = 8000.0


@dataclass(frozen=True)
class WaveNetConfig:
    """Shape of a WaveNet.

    `dilation_cycle` is one stack's dilations; empty means 1, 2, 4, ... 2**(layers_per_stack-1).
    `mel_channels` > 0 enables local (mel) conditioning, `num_speakers` > 0 global conditioning.
    `mel_mean` / `mel_std` standardise the log-mel inside the model (training measures them
    on its corpus; raw log-mel sits near -5 +- 3, which saturates the gates at the start).
    `preemphasis` > 0: the model's codes are of pre-emphasized audio, and every generation
    path de-emphasizes what it decodes (wavenet_core/emphasis.py).
    """

    layers_per_stack: int = 10
    stacks: int = 2
    residual_channels: int = 64
    skip_channels: int = 128
    classes: int = 256
    sample_rate: int = 16000
    dilation_cycle: tuple[int, ...] = ()
    mel_channels: int = 0
    num_speakers: int = 0
    speaker_channels: int = 16
    mel_mean: float = 0.0
    mel_std: float = 1.0
    preemphasis: float = 0.0
    mel: MelConfig = field(default_factory=MelConfig)

    def __post_init__(self) -> None:
        cycle = tuple(int(d) for d in self.dilation_cycle)
        object.__setattr__(self, "dilation_cycle", cycle)
        if isinstance(self.mel, dict):
            object.__setattr__(self, "mel", MelConfig(**self.mel))
        if cycle and len(cycle) != self.layers_per_stack:
            raise ValueError(
                f"dilation_cycle has {len(cycle)} entries but "
                f"layers_per_stack={self.layers_per_stack}"
            )
        positive = ("layers_per_stack", "stacks", "residual_channels", "skip_channels",
                    "classes", "sample_rate")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(d < 1 for d in cycle):
            raise ValueError(f"dilations must be >= 1, got {cycle}")
        if not self.mel_std > 0:
            raise ValueError(f"mel_std must be > 0, got {self.mel_std}")
        if not 0.0 <= self.preemphasis < 1.0:
            raise ValueError(f"preemphasis must be in [0, 1), got {self.preemphasis}")
        if self.mel_channels < 0 or self.num_speakers < 0:
            raise ValueError("mel_channels and num_speakers must be >= 0")

    @property
    def dilations(self) -> tuple[int, ...]:
        """Every layer's dilation, stacks concatenated."""
        cycle = self.dilation_cycle or tuple(2**i for i in range(self.layers_per_stack))
        return cycle * self.stacks

    @property
    def num_layers(self) -> int:
        return self.layers_per_stack * self.stacks

    @property
    def receptive_field(self) -> int:
        """Samples one output sees: each kernel-2 layer adds its dilation."""
        return sum(self.dilations) + 1

    @property
    def local_conditioning(self) -> bool:
        return self.mel_channels > 0

    @property
    def global_conditioning(self) -> bool:
        return self.num_speakers > 0

    def to_dict(self) -> dict:
        """Every field, except `preemphasis` when 0 (a model without it keeps the config,
        and the checkpoint, that code before the field reads)."""
        data = dataclasses.asdict(self)
        if not self.preemphasis:
            del data["preemphasis"]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> WaveNetConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown WaveNetConfig fields: {sorted(unknown)}")
        data = dict(data)
        if "mel" in data and isinstance(data["mel"], dict):
            data["mel"] = MelConfig(**data["mel"])
        if "dilation_cycle" in data:
            data["dilation_cycle"] = tuple(data["dilation_cycle"])
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> WaveNetConfig:
        return cls.from_dict(json.loads(text))


CONFIG_A = WaveNetConfig(layers_per_stack=10, stacks=3, residual_channels=32, skip_channels=512)
"""docs/architecture.md section 5, "classic"."""

CONFIG_B = WaveNetConfig(layers_per_stack=10, stacks=2, residual_channels=64, skip_channels=128)
"""docs/architecture.md section 5, "vocoder-small"."""
