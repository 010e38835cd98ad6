"""8-bit mu-law companding (mu = 255): float audio in [-1, 1] <-> integer codes 0..255.

Codes round-trip exactly: encode(decode(c)) == c for every code c.
Works on numpy arrays and torch tensors alike.
"""

from __future__ import annotations

import math

import numpy as np
import torch

MU = 255


def _lib(x):
    return torch if isinstance(x, torch.Tensor) else np


def mulaw_encode(audio, mu: int = MU):
    """Float audio in [-1, 1] (clipped) -> int64 codes in [0, mu]."""
    lib = _lib(audio)
    y = mulaw_compress(lib.clip(audio, -1.0, 1.0), mu)
    codes = lib.floor((y + 1.0) / 2.0 * mu + 0.5)
    if lib is torch:
        return codes.to(torch.int64)
    return codes.astype(np.int64)


def mulaw_decode(codes, mu: int = MU):
    """Integer codes in [0, mu] -> float32 audio in [-1, 1]."""
    lib = _lib(codes)
    if lib is torch:
        y = codes.to(torch.float32) * (2.0 / mu) - 1.0
    else:
        y = np.asarray(codes, dtype=np.float32) * np.float32(2.0 / mu) - np.float32(1.0)
    return mulaw_expand(y, mu)


def mulaw_compress(x, mu: int = MU):
    """The companding curve: x in [-1, 1] -> y in [-1, 1], unquantised (numpy or torch)."""
    lib = _lib(x)
    return lib.sign(x) * lib.log1p(mu * lib.abs(x)) / math.log1p(mu)


def mulaw_expand(y, mu: int = MU):
    """Its inverse: y in [-1, 1] -> x in [-1, 1] (numpy or torch)."""
    lib = _lib(y)
    return lib.sign(y) * lib.expm1(lib.abs(y) * math.log1p(mu)) / mu


def silence_code(classes: int = MU + 1) -> int:
    """The code of 0.0 with `classes` levels: the first input of a stream that starts empty."""
    return int(mulaw_encode(np.zeros(1), mu=classes - 1)[0])


SILENCE_CODE = silence_code()


def mulaw_thresholds(classes: int = MU + 1) -> np.ndarray:
    """float32 [classes - 1]: code c covers values in [t[c-1], t[c]) (the value where
    `mulaw_encode`'s rounding turns from c-1 to c), for a comparison-only encoder."""
    mu = classes - 1
    y = (np.arange(1, classes, dtype=np.float64) - 0.5) * (2.0 / mu) - 1.0
    return (np.sign(y) * np.expm1(np.abs(y) * math.log1p(mu)) / mu).astype(np.float32)


def mulaw_encode_exact(values, classes: int = MU + 1):
    """`mulaw_encode` by comparisons with `mulaw_thresholds` (no logarithm): the same code
    for every value but those within a float32 ulp of a threshold, and one result on every
    device and vector width, so generation that encodes its own output stays bitwise
    batch-invariant (excitation models feed back the code of the sample they made)."""
    table = mulaw_thresholds(classes)
    if isinstance(values, torch.Tensor):
        bounds = torch.from_numpy(table).to(values.device)
        return torch.bucketize(values.to(torch.float32).contiguous(), bounds, right=True)
    return np.searchsorted(table, np.asarray(values, dtype=np.float32), side="right"
                           ).astype(np.int64)


def mulaw_table(classes: int = MU + 1) -> np.ndarray:
    """float32 [classes]: every code's value (`mulaw_decode`), the lookup every generation
    path decodes an excitation code with (one table: no per-element `expm1`)."""
    return mulaw_decode(np.arange(classes), mu=classes - 1).astype(np.float32)
