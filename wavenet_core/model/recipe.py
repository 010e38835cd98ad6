"""FeatureRecipe: which formula turns audio into the features a model was trained on.

Why it travels in the checkpoint: a vocoder only sounds right on the features it was
trained on, so every path that makes features from audio (the server's `audio` and `text`,
`wavenet generate --audio`, training) reads the recipe from the model instead of assuming
this project's log-mel. The STFT and filterbank sizes stay in `MelConfig`, the rate in
`WaveNetConfig.sample_rate`; the recipe says what surrounds them. Kinds
(wavenet_core/audio/recipes.py computes them; docs/checkpoint-format.md):

- "ours": natural log of Slaney mel magnitudes, floor 1e-5, centred reflect-padded frames.
- "nvidia": NVIDIA Tacotron 2's `TacotronSTFT.mel_spectrogram`, the same formula as ours
  (their defaults: 22,050 Hz, fmax 8,000); the name says what an acoustic model emits.
- "r9y9": r9y9 wavenet_vocoder v0.1.x: optional peak rescaling and pre-emphasis, the lws
  (their default) or librosa STFT, `20 log10` floored at `min_level_db`, minus
  `ref_level_db`, normalised and clipped to [0, 1].
- "r9y9-master": their later GitHub master: optional 255-tap FIR high-pass, librosa STFT,
  `log10` floored at 1e-10, then per band `(x - mean) / scale` (their meanvar file).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

KINDS = ("ours", "nvidia", "r9y9", "r9y9-master")
STFTS = ("lws", "librosa")
_FIELDS = {"ours": (), "nvidia": (),
           "r9y9": ("rescaling_max", "preemphasis", "stft", "min_level_db", "ref_level_db"),
           "r9y9-master": ("highpass_cutoff", "mean", "scale")}


@dataclass(frozen=True)
class FeatureRecipe:
    """One feature formula and its parameters (the fields of other kinds stay default).

    `rescaling_max` > 0: audio / max|audio| * rescaling_max first (their `rescaling`);
    `preemphasis` their nnmnkwii pre-emphasis coefficient before the STFT (0 = none);
    `stft` "lws" or "librosa"; `min_level_db`, `ref_level_db` their dB normalisation;
    `highpass_cutoff` Hz of master's low-cut filter (0 = none); `mean`, `scale` master's
    per-band standardisation (their StandardScaler's mean_ and scale_)."""

    kind: str = "ours"
    rescaling_max: float = 0.0
    preemphasis: float = 0.0
    stft: str = "lws"
    min_level_db: float = -100.0
    ref_level_db: float = 20.0
    highpass_cutoff: float = 0.0
    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "scale", tuple(float(v) for v in self.scale))
        if self.kind not in KINDS:
            raise ValueError(f"features kind must be one of {KINDS}, got {self.kind!r}")
        stray = [f.name for f in dataclasses.fields(self) if f.name != "kind"
                 and f.name not in _FIELDS[self.kind] and getattr(self, f.name) != f.default]
        if stray:
            raise ValueError(f"features kind {self.kind!r} takes no {', '.join(stray)}")
        if self.stft not in STFTS:
            raise ValueError(f"features stft must be one of {STFTS}, got {self.stft!r}")
        if not 0.0 <= self.rescaling_max <= 1.0 or not 0.0 <= self.preemphasis < 1.0:
            raise ValueError("features rescaling_max must be in [0, 1] and preemphasis in "
                             "[0, 1)")
        if not self.min_level_db < 0:
            raise ValueError(f"features min_level_db must be < 0, got {self.min_level_db}")
        if self.highpass_cutoff < 0:
            raise ValueError(f"features highpass_cutoff must be >= 0, got "
                             f"{self.highpass_cutoff}")
        if self.kind == "r9y9-master":
            if not self.mean or len(self.mean) != len(self.scale):
                raise ValueError("features r9y9-master needs mean and scale, one per band")
            if not all(s > 0 for s in self.scale):
                raise ValueError("features scale must be > 0 in every band")

    def check_bands(self, n_mels: int) -> None:
        """A per-band standardisation needs one mean and scale per mel band."""
        if self.mean and len(self.mean) != n_mels:
            raise ValueError(f"features mean and scale have {len(self.mean)} bands, the mel "
                             f"{n_mels}")

    def to_dict(self) -> dict:
        """`kind` and the fields this kind uses."""
        return {"kind": self.kind, **{name: list(v) if isinstance(v, tuple) else v
                                      for name in _FIELDS[self.kind]
                                      for v in (getattr(self, name),)}}

    @classmethod
    def from_dict(cls, data: dict) -> FeatureRecipe:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown features fields: {sorted(unknown)}")
        return cls(**data)

    def describe(self) -> str:
        """What a client must send, in words."""
        if self.kind == "ours":
            return "this project's log-mel (natural log, floor 1e-5)"
        if self.kind == "nvidia":
            return "NVIDIA Tacotron 2 log-mel (natural log, floor 1e-5)"
        if self.kind == "r9y9":
            return (f"r9y9 wavenet_vocoder v0.1.x mel (20 log10, min_level_db "
                    f"{self.min_level_db:g}, ref_level_db {self.ref_level_db:g}, normalised "
                    f"to [0, 1])")
        return ("r9y9 wavenet_vocoder master mel (log10, floor 1e-10, standardised per band "
                "with its meanvar)")
