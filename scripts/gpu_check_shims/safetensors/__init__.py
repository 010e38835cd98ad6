"""The safetensors file format for torch tensors, read side (see README.md)."""

from __future__ import annotations

import json
import struct

import torch as _torch  # not "torch": the submodule safetensors.torch takes that name

DTYPES = {"F32": _torch.float32, "F16": _torch.float16, "BF16": _torch.bfloat16,
          "F64": _torch.float64, "I64": _torch.int64, "I32": _torch.int32, "U8": _torch.uint8,
          "I8": _torch.int8, "BOOL": _torch.bool}


class SafetensorError(Exception):
    pass


class safe_open:  # noqa: N801  (the real function's name)
    def __init__(self, path, framework="pt", device="cpu"):
        try:
            with open(path, "rb") as f:
                data = f.read()
            (size,) = struct.unpack("<Q", data[:8])
            self._header = json.loads(data[8:8 + size])
        except (struct.error, ValueError, UnicodeDecodeError) as exc:
            raise SafetensorError(f"invalid header: {exc}") from exc
        self._data = data[8 + size:]
        self._meta = self._header.pop("__metadata__", None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def metadata(self):
        return self._meta

    def keys(self):
        return list(self._header)

    def get_tensor(self, name):
        info = self._header[name]
        start, end = info["data_offsets"]
        raw = bytearray(self._data[start:end])
        dtype = DTYPES[info["dtype"]]
        if not raw:
            return _torch.empty(info["shape"], dtype=dtype)
        return _torch.frombuffer(raw, dtype=dtype).reshape(info["shape"]).clone()
