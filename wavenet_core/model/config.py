"""WaveNetConfig: every number that shapes a model, with a JSON round trip.

The config travels inside each checkpoint (safetensors metadata), so a checkpoint
alone is enough to rebuild its model.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from wavenet_core.model.recipe import FeatureRecipe


@dataclass(frozen=True)
class MelConfig:
    """Log-mel analysis parameters (librosa / HiFi-GAN convention, Slaney mel filters)."""

    n_mels: int = 80
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    fmin: float = 0.0
    fmax: float = 8000.0


VARIANT_OPTIONS = ("kernel_size", "gate_channels", "out_bias", "residual_scale", "input_kind",
                   "output", "upsample_scales", "excitation", "voiced_temperature",
                   "voiced_floor")
"""The WaveNetConfig fields beyond the seed's design (other WaveNets: docs/checkpoint-format.md)."""


@dataclass(frozen=True)
class WaveNetConfig:
    """Shape of a WaveNet.

    `dilation_cycle` is one stack's dilations; empty means 1, 2, 4, ... 2**(layers_per_stack-1).
    `mel_channels` > 0 enables local (mel) conditioning, `num_speakers` > 0 global conditioning.
    `mel_mean` / `mel_std` standardise the log-mel inside the model (training measures them
    on its corpus; raw log-mel sits near -5 +- 3, which saturates the gates at the start).

    The remaining fields describe other WaveNets (r9y9's wavenet_vocoder, `convert.py`); their
    defaults are the seed's design. `kernel_size` taps per dilated conv; `gate_channels` the
    width of z (filter and gate each; 0 = residual_channels); `out_bias` biases on the
    residual and skip 1x1s; `residual_scale` multiplies each layer's residual sum;
    `input_kind` "embedding" (mu-law codes) or "scalar" (a sample in [-1, 1] through a 1x1);
    `output` "softmax" (classes), "mol" (discretized mixture of `mixtures` logistics) or
    "gaussian", `log_scale_min` clamping their log scales; `upsample_scales` a learned
    conditioning upsampler (empty: linear interpolation of frames) with frequency kernel
    `upsample_freq_kernel`. See docs/checkpoint-format.md.
    `preemphasis` > 0: the model's codes are of pre-emphasized audio, and every generation
    path de-emphasizes what it decodes (wavenet_core/audio/emphasis.py).
    `cond_layers` > 0: a conditioning network over the (standardised) mel frames before
    the upsampling, `cond_layers` residual blocks of `cond_kernel` taps with one frame of
    lookahead each (wavenet_core/model/condnet.py); 0 = none, the seed's design.
    `excitation` "lpc": linear prediction of order `lpc_order` from the mel predicts each
    sample from the last ones, the model sees that prediction beside the previous sample
    and outputs the mu-law distribution of the prediction's error (docs/excitation.md);
    "none" = the seed's design. `lpc_expansion` gamma in (0, 1]: the coefficients become
    gamma^k a_k (bandwidth expansion: every pole of 1/A(z) pulled in by gamma, so an error
    fed back through the synthesis filter dies out sooner); 1.0 = none.
    `voiced_temperature` / `voiced_floor`: the model's default sampling in voiced frames
    (voicing from the mel; FFTNet's and LPCNet's voicing-shaped sampling,
    docs/voicing.md): that temperature, and the probabilities below the floor zeroed.
    1.0 and 0.0 (the defaults) = off: every sample at the stream's temperature. A request
    that gives a temperature samples at it everywhere, unshaped.
    `features` the recipe that makes the model's features from audio (recipe.py; default
    "ours", this project's log-mel).
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
    kernel_size: int = 2
    gate_channels: int = 0
    out_bias: bool = False
    residual_scale: float = 1.0
    input_kind: str = "embedding"
    output: str = "softmax"
    mixtures: int = 0
    log_scale_min: float = -7.0
    upsample_scales: tuple[int, ...] = ()
    upsample_freq_kernel: int = 3
    cond_layers: int = 0
    cond_kernel: int = 3
    excitation: str = "none"
    lpc_order: int = 16
    lpc_expansion: float = 1.0
    voiced_temperature: float = 1.0
    voiced_floor: float = 0.0
    features: FeatureRecipe = field(default_factory=FeatureRecipe)

    def __post_init__(self) -> None:
        cycle = tuple(int(d) for d in self.dilation_cycle)
        object.__setattr__(self, "dilation_cycle", cycle)
        object.__setattr__(self, "upsample_scales", tuple(int(s) for s in self.upsample_scales))
        if isinstance(self.mel, dict):
            object.__setattr__(self, "mel", MelConfig(**self.mel))
        if isinstance(self.features, dict):
            object.__setattr__(self, "features", FeatureRecipe.from_dict(self.features))
        self.features.check_bands(self.mel.n_mels)
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
        self._check_variant()
        if self.cond_layers < 0:
            raise ValueError(f"cond_layers must be >= 0, got {self.cond_layers}")
        if self.cond_layers and not self.local_conditioning:
            raise ValueError("cond_layers > 0 needs a mel-conditioned model (mel_channels > 0)")
        if self.cond_kernel < 2:
            raise ValueError(f"cond_kernel must be >= 2, got {self.cond_kernel}")
        self._check_excitation()
        self._check_shaping()

    def _check_shaping(self) -> None:
        """Voicing-shaped sampling reads the mel (its filterbank inverted), on a softmax."""
        if not (self.voiced_temperature >= 0 and math.isfinite(self.voiced_temperature)):
            raise ValueError(f"voiced_temperature must be finite and >= 0, got "
                             f"{self.voiced_temperature}")
        if not 0.0 <= self.voiced_floor < 1.0:
            raise ValueError(f"voiced_floor must be in [0, 1), got {self.voiced_floor}")
        if not self.voicing_shaping:
            return
        if self.features.kind not in ("ours", "nvidia"):
            raise ValueError(f"voicing-shaped sampling inverts a natural-log mel (features "
                             f"'ours' or 'nvidia'), not {self.features.kind!r} features")
        if not self.local_conditioning or self.mel.n_mels != self.mel_channels:
            raise ValueError("voicing-shaped sampling (voiced_temperature, voiced_floor) "
                             "needs a mel-conditioned model with mel_channels == mel.n_mels")
        if self.scalar_io:
            raise ValueError("voicing-shaped sampling needs a softmax output")

    def _check_excitation(self) -> None:
        """An excitation model predicts from the mel, in mu-law, without pre-emphasis."""
        if self.excitation not in ("none", "lpc"):
            raise ValueError(f"excitation must be 'none' or 'lpc', got {self.excitation!r}")
        if self.lpc_order < 1:
            raise ValueError(f"lpc_order must be >= 1, got {self.lpc_order}")
        if not 0.0 < self.lpc_expansion <= 1.0:
            raise ValueError(f"lpc_expansion must be in (0, 1], got {self.lpc_expansion}")
        if self.excitation == "none":
            return
        if self.features.kind not in ("ours", "nvidia"):
            raise ValueError(f"excitation 'lpc' inverts a natural-log mel (features 'ours' "
                             f"or 'nvidia'), not {self.features.kind!r} features")
        if not self.local_conditioning:
            raise ValueError("excitation 'lpc' needs a mel-conditioned model (mel_channels > 0)")
        if self.mel.n_mels != self.mel_channels:
            raise ValueError(f"excitation 'lpc' inverts the mel filterbank: mel_channels "
                             f"{self.mel_channels} must equal mel.n_mels {self.mel.n_mels}")
        if self.scalar_io:
            raise ValueError("excitation 'lpc' needs input_kind 'embedding' (softmax output)")
        if self.preemphasis:
            raise ValueError("excitation 'lpc' and preemphasis do not combine (the linear "
                             "prediction already shapes the noise)")

    def _check_variant(self) -> None:
        """The options other WaveNets need (kernel, widths, input, output, upsampler)."""
        if self.kernel_size < 2:
            raise ValueError(f"kernel_size must be >= 2, got {self.kernel_size}")
        if self.gate_channels < 0:
            raise ValueError(f"gate_channels must be >= 0, got {self.gate_channels}")
        pairs = {"embedding": ("softmax",), "scalar": ("mol", "gaussian")}
        if self.input_kind not in pairs:
            raise ValueError(f"input_kind must be 'embedding' or 'scalar', got "
                             f"{self.input_kind!r}")
        if self.output not in pairs[self.input_kind]:
            raise ValueError(f"output {self.output!r} does not go with input_kind "
                             f"{self.input_kind!r} (embedding: softmax; scalar: mol, gaussian)")
        if (self.output == "mol") != (self.mixtures > 0):
            raise ValueError("mixtures > 0 exactly when output is 'mol'")
        if self.upsample_scales:
            if any(s < 1 for s in self.upsample_scales):
                raise ValueError(f"upsample_scales must be >= 1, got {self.upsample_scales}")
            if math.prod(self.upsample_scales) != self.mel.hop_length:
                raise ValueError(f"upsample_scales {self.upsample_scales} multiply to "
                                 f"{math.prod(self.upsample_scales)}, not the hop_length "
                                 f"{self.mel.hop_length}")
            if self.upsample_freq_kernel < 1 or self.upsample_freq_kernel % 2 == 0:
                raise ValueError("upsample_freq_kernel must be odd")
            if (self.mel_mean, self.mel_std) != (0.0, 1.0):
                raise ValueError("a learned upsampler takes its features as they are: "
                                 "mel_mean must be 0 and mel_std 1")

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
        """Samples one output sees: each layer adds (kernel_size - 1) * its dilation."""
        return (self.kernel_size - 1) * sum(self.dilations) + 1

    @property
    def gate_width(self) -> int:
        """Width of z (and of the filter and the gate each)."""
        return self.gate_channels or self.residual_channels

    @property
    def output_channels(self) -> int:
        """Width of the last 1x1: classes, 3 per mixture (logit, mean, log scale), or 2."""
        return {"softmax": self.classes, "mol": 3 * self.mixtures, "gaussian": 2}[self.output]

    @property
    def scalar_io(self) -> bool:
        """Samples in [-1, 1] in and out (mol / gaussian) instead of mu-law codes."""
        return self.input_kind == "scalar"

    def require_seed_design(self, backend: str, supported: tuple[str, ...] = ()) -> None:
        """Raise ValueError naming the options a backend that runs the seed's design plus
        the option names in `supported` cannot run (the torch backend runs them all)."""
        options = self.unsupported_options(supported)
        if options:
            raise ValueError(f"the {backend!r} backend does not support {', '.join(options)} "
                             f"yet; use the 'torch' backend (backend 'auto' picks it)")

    def unsupported_options(self, supported: tuple[str, ...] = ()) -> list[str]:
        """The non-seed options this config uses, as `name=value`, leaving out the names in
        `supported` (empty: a backend that runs those and the seed's design runs it)."""
        defaults = WaveNetConfig()
        return [f"{n}={getattr(self, n)!r}" for n in VARIANT_OPTIONS
                if getattr(self, n) != getattr(defaults, n) and n not in supported
                and not (n == "gate_channels" and self.gate_width == self.residual_channels)]

    @property
    def lpc_excitation(self) -> bool:
        """The model outputs the excitation of a linear prediction from the mel."""
        return self.excitation == "lpc"

    @property
    def voicing_shaping(self) -> bool:
        """Voiced frames sample sharpened and cut by default (docs/voicing.md)."""
        return self.voiced_temperature != 1.0 or self.voiced_floor != 0.0

    @property
    def pcm_output(self) -> bool:
        """Generation returns 16-bit PCM codes (scalar and excitation models), not mu-law."""
        return self.scalar_io or self.lpc_excitation

    @property
    def local_conditioning(self) -> bool:
        return self.mel_channels > 0

    @property
    def global_conditioning(self) -> bool:
        return self.num_speakers > 0

    def to_dict(self) -> dict:
        """Every field, except `preemphasis` when 0, `cond_layers` / `cond_kernel` when
        `cond_layers` is 0, `excitation` / `lpc_order` when `excitation` is "none",
        `lpc_expansion` when 1.0, `voiced_temperature` / `voiced_floor` when the shaping is
        off and `features` when it is "ours" (a model without them keeps the config, and
        the checkpoint, that code before the fields reads)."""
        data = dataclasses.asdict(self)
        data["features"] = self.features.to_dict()
        if self.features.kind == "ours":
            del data["features"]
        if not self.preemphasis:
            del data["preemphasis"]
        if not self.cond_layers:
            del data["cond_layers"], data["cond_kernel"]
        if not self.lpc_excitation:
            del data["excitation"], data["lpc_order"]
        if self.lpc_expansion == 1.0:
            del data["lpc_expansion"]
        if not self.voicing_shaping:
            del data["voiced_temperature"], data["voiced_floor"]
        return data

    @property
    def cond_lookahead(self) -> int:
        """Frames of lookahead the conditioning network adds (0 without one)."""
        return self.cond_layers

    @property
    def cond_left_context(self) -> int:
        """Frames before f that the conditioning network's frame f reads (0 without one)."""
        return self.cond_layers * (self.cond_kernel - 2)

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
        if isinstance(data.get("features"), dict):
            data["features"] = FeatureRecipe.from_dict(data["features"])
        for key in ("dilation_cycle", "upsample_scales"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> WaveNetConfig:
        return cls.from_dict(json.loads(text))


CONFIG_A = WaveNetConfig(layers_per_stack=10, stacks=3, residual_channels=32, skip_channels=512)
"""docs/architecture.md section 5, "classic"."""

CONFIG_B = WaveNetConfig(layers_per_stack=10, stacks=2, residual_channels=64, skip_channels=128)
"""docs/architecture.md section 5, "vocoder-small"."""
