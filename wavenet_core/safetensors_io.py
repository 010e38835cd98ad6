"""safetensors reading and writing, with or without the `safetensors` package.

Why: `scripts/gpu-train` runs where only torch and numpy are installed. The file format
is small (an 8-byte little-endian header length, a JSON header of dtype/shape/offsets and
`__metadata__`, then raw little-endian tensor bytes), so when the package is missing this
module reads and writes the same files itself. With the package present it is used as is.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
           "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
           "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}
_NAMES = {v: k for k, v in _DTYPES.items()}


class LiteSafetensorError(Exception):
    """The file is not valid safetensors (raised by the built-in reader)."""


class _File:
    def __init__(self, path: str):
        data = Path(path).read_bytes()
        if len(data) < 8:
            raise LiteSafetensorError("file too short")
        (size,) = struct.unpack("<Q", data[:8])
        try:
            header = json.loads(data[8:8 + size])
        except (ValueError, UnicodeDecodeError) as exc:
            raise LiteSafetensorError(f"bad header ({exc})") from exc
        self._meta = header.pop("__metadata__", None)
        self._header, self._body = header, memoryview(data)[8 + size:]

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def metadata(self) -> dict | None:
        return self._meta

    def keys(self) -> list[str]:
        return list(self._header)

    def get_tensor(self, name: str) -> torch.Tensor:
        info = self._header[name]
        start, stop = info["data_offsets"]
        if info["dtype"] not in _DTYPES or stop > len(self._body):
            raise LiteSafetensorError(f"tensor {name}: bad dtype or offsets")
        raw = bytearray(self._body[start:stop])
        flat = torch.frombuffer(raw, dtype=_DTYPES[info["dtype"]]) if raw else \
            torch.empty(0, dtype=_DTYPES[info["dtype"]])
        return flat.reshape(info["shape"]).clone()


def lite_safe_open(path: str, framework: str = "pt", device: str = "cpu") -> _File:
    return _File(path)


def lite_load_file(path: str, device: str = "cpu") -> dict[str, torch.Tensor]:
    f = _File(path)
    return {name: f.get_tensor(name) for name in f.keys()}


def lite_save_file(tensors: dict[str, torch.Tensor], path: str,
              metadata: dict[str, str] | None = None) -> None:
    header: dict = {"__metadata__": metadata} if metadata else {}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        blob = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for blob in blobs:
            f.write(blob)


try:
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file, save_file
except ImportError:  # the built-in implementation above
    SafetensorError, safe_open = LiteSafetensorError, lite_safe_open
    load_file, save_file = lite_load_file, lite_save_file

__all__ = ["SafetensorError", "load_file", "safe_open", "save_file"]
