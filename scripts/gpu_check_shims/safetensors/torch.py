"""safetensors.torch.save_file / load_file (see README.md)."""

from __future__ import annotations

import json
import struct

import torch as _torch

from safetensors import DTYPES, safe_open

NAMES = {dtype: name for name, dtype in DTYPES.items()}


def save_file(tensors, filename, metadata=None):
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        raw = t.reshape(-1).view(_torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(filename, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)


def load_file(filename, device="cpu"):
    with safe_open(filename) as f:
        return {name: f.get_tensor(name) for name in f.keys()}

