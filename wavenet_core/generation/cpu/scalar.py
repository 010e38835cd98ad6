"""In-kernel sampling for scalar-output models (mixture of logistics, Gaussian): the
procedure of `sampling.sample_scalar`, with the same counter draws (draw j of sample p is
`counter_uniform(seed, p * D + j)`), so the uniforms are bitwise the torch backend's and
the samples equal it within float rounding.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from wavenet_core.generation.cpu.simd import _JIT, _ONE, _ZERO, counter_uniform_one
from wavenet_core.generation.sampling import PCM_SCALE, U_LOW

_F = np.float32
_U_LOW = _F(U_LOW)
_U_SPAN = _F(1.0 - 2 * U_LOW)
_TWO_PI = _F(2 * np.pi)
_MINUS_TWO = _F(-2.0)
_PCM = _F(PCM_SCALE)

OUT_KINDS = {"softmax": 0, "mol": 1, "gaussian": 2}


@njit(inline="always", **_JIT)
def _r9y9_uniform(u):
    return _U_LOW + _U_SPAN * u


@njit(**_JIT)
def sample_scalar_one(params, kind, mixtures, log_scale_min, temperature, seed, position):
    """One sample in [-1, 1] from one row of mixture (kind 1) or Gaussian (kind 2)
    parameters, as `sampling.sample_scalar`: Gumbel-max pick then a logistic sample, or
    Box-Muller; temperature 0 gives the most likely mixture's mean."""
    if kind == 2:
        base = np.int64(position) * 2
        u0 = counter_uniform_one(seed, base)
        u1 = counter_uniform_one(seed, base + 1)
        scale = np.exp(max(params[1], log_scale_min))
        normal = np.sqrt(_MINUS_TWO * np.log1p(-u0)) * np.cos(_TWO_PI * u1)
        x = params[0] + temperature * scale * normal
        return min(max(x, -_ONE), _ONE)
    m = mixtures
    base = np.int64(position) * (m + 1)
    pick = 0
    best = params[0]
    for i in range(m):
        score = params[i]
        if temperature > _ZERO:
            u = _r9y9_uniform(counter_uniform_one(seed, base + i))
            score = score - np.log(-np.log(u))
        if i == 0 or score > best:          # the first maximum, as argmax
            best = score
            pick = i
    log_scale = max(params[2 * m + pick], log_scale_min)
    v = _r9y9_uniform(counter_uniform_one(seed, base + m))
    x = params[m + pick] + temperature * np.exp(log_scale) * (np.log(v) - np.log(_ONE - v))
    return min(max(x, -_ONE), _ONE)


@njit(inline="always", **_JIT)
def pcm_code(x):
    """`sampling.scalar_codes` for one sample: round(32767 x), ties to even."""
    return np.int64(np.rint(x * _PCM))
