"""Checkpoints: one safetensors file, the config JSON and a format version in its metadata.

Loading never unpickles: safetensors holds raw tensors, the metadata holds JSON. Every
problem (unreadable file, missing/extra/misshaped/non-finite tensor, unknown version)
raises `CheckpointError` naming the file and, where there is one, the tensor. The
`safetensors` package reads the file and refuses overlapping tensors, holes and data
shorter than the header says; its errors become `CheckpointError`. A config beyond sane
sizes (`CONFIG_LIMITS`) is refused, and every tensor's shape is checked against the header
before the model is built, so a small file cannot make the loader allocate a huge model.
The format is documented tensor by tensor in docs/checkpoint-format.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from wavenet_core.model.config import WaveNetConfig
from wavenet_core.model.wavenet import WaveNet

FORMAT_NAME = "wavenet-core"
FORMAT_VERSION = "2"
READABLE_VERSIONS = ("1", "2")   # version 1: the seed's design only (config defaults)


# far beyond any WaveNet published, far below what would exhaust a server
CONFIG_LIMITS = {"num_layers": 1024, "residual_channels": 4096, "skip_channels": 8192,
                 "gate_width": 8192, "classes": 65536, "mel_channels": 1024,
                 "num_speakers": 100_000, "speaker_channels": 4096, "kernel_size": 64,
                 "mixtures": 1024, "cond_layers": 64, "cond_kernel": 65,
                 "sample_rate": 192_000, "receptive_field": 1 << 20}
RING_LIMIT = 1 << 24      # receptive_field x residual_channels: one slot's ring of floats
MEL_LIMITS = {"n_mels": 1024, "n_fft": 1 << 16, "win_length": 1 << 16, "hop_length": 1 << 14}


def config_too_large(config: WaveNetConfig) -> str | None:
    """Which sane size the config exceeds, or None."""
    for name, limit in CONFIG_LIMITS.items():
        if getattr(config, name) > limit:
            return f"{name} {getattr(config, name)} exceeds {limit}"
    if config.receptive_field * config.residual_channels > RING_LIMIT:
        return (f"receptive_field x residual_channels {config.receptive_field} x "
                f"{config.residual_channels} exceeds {RING_LIMIT}")
    for name, limit in MEL_LIMITS.items():
        if getattr(config.mel, name) > limit:
            return f"mel.{name} {getattr(config.mel, name)} exceeds {limit}"
    if len(config.upsample_scales) > 16:
        return f"{len(config.upsample_scales)} upsample_scales exceed 16"
    return None


class CheckpointError(ValueError):
    """A checkpoint cannot be used; `path` and `tensor` (or None) say where."""

    def __init__(self, path, message: str, tensor: str | None = None):
        self.path, self.tensor = str(path), tensor
        where = f"{self.path}" + (f", tensor '{tensor}'" if tensor else "")
        super().__init__(f"{where}: {message}")


def save_checkpoint(path, model: WaveNet, metadata: dict[str, str] | None = None) -> None:
    """Write the model's float32 weights and config. Extra string `metadata` is kept too."""
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous()
               for k, v in model.state_dict().items()}
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "config": model.config.to_json()}
    for key, value in (metadata or {}).items():
        meta.setdefault(key, str(value))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def read_metadata(path) -> dict[str, str]:
    """The checkpoint's metadata (format, version, config JSON, extras) without its tensors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(path, f"not a readable safetensors file ({exc})") from exc


def speaker_names(path, num_speakers: int | None = None) -> list[str] | None:
    """The optional `speakers` metadata: unique names, index = speaker id.

    None when absent, or when it is not a JSON list of `num_speakers` unique strings
    (when `num_speakers` is given): names are a convenience, ids always work.
    """
    raw = read_metadata(path).get("speakers")
    try:
        names = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return None
    if (not isinstance(names, list) or not all(isinstance(n, str) for n in names)
            or len(set(names)) != len(names)
            or (num_speakers is not None and len(names) != num_speakers)):
        return None
    return names


def load_config(path) -> WaveNetConfig:
    meta = read_metadata(path)
    if meta.get("format") != FORMAT_NAME:
        raise CheckpointError(path, f"metadata 'format' is {meta.get('format')!r}, "
                                    f"expected {FORMAT_NAME!r}")
    if meta.get("format_version") not in READABLE_VERSIONS:
        raise CheckpointError(path, f"unsupported format_version {meta.get('format_version')!r}"
                                    f" (this library reads {', '.join(READABLE_VERSIONS)})")
    try:
        config = WaveNetConfig.from_json(meta["config"])
    except (KeyError, ValueError, TypeError, RecursionError, OverflowError,
            json.JSONDecodeError) as exc:
        raise CheckpointError(path, f"bad 'config' metadata ({exc})") from exc
    problem = config_too_large(config)
    if problem:
        raise CheckpointError(path, f"'config' beyond sane sizes: {problem}")
    return config


def load_checkpoint(path, device: str | torch.device = "cpu") -> WaveNet:
    """Rebuild the model from its config and load every tensor, checked by name and shape."""
    config = load_config(path)
    with torch.device("meta"):               # shapes only: nothing allocated yet
        expected = WaveNet(config).state_dict()
    state = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            names = set(f.keys())
            for name in sorted(set(expected) - names):
                raise CheckpointError(path, "missing", tensor=name)
            for name in sorted(names - set(expected)):
                raise CheckpointError(path, "unexpected tensor for this config", tensor=name)
            for name, want in expected.items():      # every shape before any data
                shape = tuple(f.get_slice(name).get_shape())
                if shape != tuple(want.shape):
                    raise CheckpointError(path, f"shape {shape}, expected "
                                                f"{tuple(want.shape)}", tensor=name)
            for name in expected:
                got = f.get_tensor(name)
                if got.dtype != torch.float32:
                    raise CheckpointError(path, f"dtype {got.dtype}, expected float32", name)
                if not torch.isfinite(got).all():
                    raise CheckpointError(path, "contains NaN or infinite values", tensor=name)
                state[name] = got
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(path, f"damaged safetensors data ({exc})") from exc
    model = WaveNet(config)
    model.load_state_dict(state)
    return model.to(device).eval()
