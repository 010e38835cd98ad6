"""In-kernel pieces of an excitation model (docs/excitation.md): the LPC history, the
prediction, the mu-law code of the fed-back sample and the sample made from an excitation
code. The same procedures as `lpc.predict` (products summed in `tree_sum`'s pairwise order),
`mulaw.mulaw_encode_exact` (count of thresholds <= x) and `sampling.excitation_sample`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from wavenet_core.audio.mulaw import mulaw_table, mulaw_thresholds
from wavenet_core.generation.cpu.simd import _JIT, _ONE, _ZERO


def excitation_dims(model) -> dict:
    """The kernel's `Dims` fields of an excitation model, empty for others."""
    config, empty = model.config, np.zeros(0, np.float32)
    if not config.lpc_excitation:
        return dict(order=0, pred_w=empty, thresholds=empty, table=empty)
    weight = model.prediction_input.detach().cpu().numpy()
    return dict(order=config.lpc_order, pred_w=np.ascontiguousarray(weight, np.float32),
                thresholds=mulaw_thresholds(config.classes), table=mulaw_table(config.classes))


@njit(**_JIT)
def push_and_predict(history, value, coefs, buf):
    """Shift `value` into `history` [order] (newest first) -> the prediction
    p = -(a_1 x_{t-1} + ... + a_order x_{t-order}) with `coefs` [order]; `buf` holds at
    least the next power of two of order floats (scratch)."""
    order = history.shape[0]
    for j in range(order - 1, 0, -1):
        history[j] = history[j - 1]
    history[0] = value
    size = buf.shape[0]
    for j in range(size):
        buf[j] = history[j] * coefs[j] if j < order else _ZERO
    while size > 1:
        size //= 2
        for j in range(size):
            buf[j] = buf[j] + buf[j + size]
    return -buf[0]


@njit(**_JIT)
def mulaw_code(value, thresholds):
    """The number of `thresholds` (ascending) at or below `value`: its mu-law code."""
    lo, hi = 0, thresholds.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if thresholds[mid] <= value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(**_JIT)
def excitation_value(prediction, code, table):
    """The sample an excitation code makes: clamp(p + e, -1, 1)."""
    x = prediction + table[code]
    return min(max(x, -_ONE), _ONE)

