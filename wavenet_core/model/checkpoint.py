"""Checkpoints: one safetensors file, the config JSON and a format version in its metadata.

Loading never unpickles: safetensors holds raw tensors, the metadata holds JSON. Every
problem (unreadable file, missing/extra/misshaped/non-finite tensor, unknown version)
raises `CheckpointError` naming the file and, where there is one, the tensor.
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
        return WaveNetConfig.from_json(meta["config"])
    except (KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
        raise CheckpointError(path, f"bad 'config' metadata ({exc})") from exc


def load_checkpoint(path, device: str | torch.device = "cpu") -> WaveNet:
    """Rebuild the model from its config and load every tensor, checked by name and shape."""
    config = load_config(path)
    model = WaveNet(config)
    expected = model.state_dict()
    state = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            names = set(f.keys())
            for name in sorted(set(expected) - names):
                raise CheckpointError(path, "missing", tensor=name)
            for name in sorted(names - set(expected)):
                raise CheckpointError(path, "unexpected tensor for this config", tensor=name)
            for name, want in expected.items():
                got = f.get_tensor(name)
                if tuple(got.shape) != tuple(want.shape):
                    raise CheckpointError(path, f"shape {tuple(got.shape)}, expected "
                                                f"{tuple(want.shape)}", tensor=name)
                if got.dtype != torch.float32:
                    raise CheckpointError(path, f"dtype {got.dtype}, expected float32", name)
                if not torch.isfinite(got).all():
                    raise CheckpointError(path, "contains NaN or infinite values", tensor=name)
                state[name] = got
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(path, f"damaged safetensors data ({exc})") from exc
    model.load_state_dict(state)
    return model.to(device).eval()
