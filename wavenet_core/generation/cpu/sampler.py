"""The compiled CPU kernel's sampler: one row of logits -> one code, `sampling.sample_codes`'
procedure (softmax(logits / T), a draw u times the total, the first class whose cumulative
sum exceeds it) with a cumulative sum in blocks, so a row costs no 256-add chain.

The probabilities p are cut into blocks of 16 classes (the last padded with zeros, which
add exactly). Each block's sum is a fixed pairwise tree (adjacent pairs, four levels: one
lane-wise pass per level over all blocks), the blocks' cumulative sums C_b run in order,
total = C_last. The draw's block is the number of blocks with C_b <= u x total; inside it
the cumulative sum restarts from C_(b-1) and the code is the block's first class plus the
count of its running sums <= u x total, capped at classes - 1. Each value has one order of
operations whatever else runs: a row's code never depends on other rows, on the team or on
the build (the AVX2 build does each lane-wise pass in 8-lane halves). The cumulative sums
differ from one chain of `classes` adds by roundings, so a code may differ from
sample_codes' where u x total falls within an ulp or so of a class boundary
(tests/generation/cpu/test_cpu_backend.py: at least 99.5% the same codes, as exp already
differed by an ulp). docs/cpu-kernel.md "Sampler" has the measured A/B.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from wavenet_core.generation.cpu.simd import _JIT, _ONE, _ZERO, LANES, _exp_neg


@njit(**_JIT)
def sampler_words(classes):
    """float32 scratch `sample_row` needs for `classes` outputs: the padded probabilities,
    the tree's levels and the blocks' cumulative sums."""
    return 2 * LANES * ((classes + LANES - 1) // LANES)


@njit(inline="always", **_JIT)
def _block_sums(buf, size):
    """buf[:size] (size a multiple of 16) -> each block's pairwise sum, then their running
    sums at buf[2 size - size / 16:2 size]; returns the total."""
    blocks = size // LANES
    src, width = 0, size
    while width > blocks:                 # adjacent pairs, one level of the tree per pass
        half = width // 2
        a = buf[src:src + width]
        out = buf[src + width:src + width + half]
        for i in range(half):
            out[i] = a[2 * i] + a[2 * i + 1]
        src, width = src + width, half
    sums = buf[src:src + blocks]
    cum = buf[src + blocks:src + 2 * blocks]
    run = _ZERO
    for b in range(blocks):
        run = run + sums[b]
        cum[b] = run
    return run


@njit(**_JIT)
def sample_row(logits, temperature, floor, uniform, buf):
    """One row's code: greedy (the first maximum) at temperature 0; else the blocked
    inverse CDF above over p = exp(logits / T - max(logits) / T) (max(l / T) is max(l) / T
    exactly: division by T > 0 is monotonic), after, where `floor` > 0, zeroing the p below
    floor x their total. buf: `sampler_words(classes)` float32 scratch."""
    classes = logits.shape[0]
    peak = logits[0]
    for o in range(classes):
        peak = max(peak, logits[o])
    if temperature <= _ZERO:
        for o in range(classes):
            if logits[o] == peak:
                return o
        return 0
    size = LANES * ((classes + LANES - 1) // LANES)
    p = buf[:size]
    if temperature == _ONE:               # x / 1 is x: skip the divisions
        for o in range(classes):
            p[o] = _exp_neg(logits[o] - peak)
    else:
        top = peak / temperature
        for o in range(classes):
            p[o] = _exp_neg(logits[o] / temperature - top)
    for o in range(classes, size):
        p[o] = _ZERO
    total = _block_sums(buf, size)
    if floor > _ZERO:
        cut = floor * total
        for o in range(classes):
            p[o] = _ZERO if p[o] < cut else p[o]
        total = _block_sums(buf, size)
    target = uniform * total
    blocks = size // LANES
    cum = buf[2 * size - blocks:2 * size]
    b = 0
    for j in range(blocks):
        b += np.int64(cum[j] <= target)
    if b >= blocks:
        return classes - 1
    run = cum[b - 1] if b > 0 else _ZERO
    q = p[b * LANES:(b + 1) * LANES]
    drawn = b * LANES
    for j in range(LANES):
        run = run + q[j]
        drawn += np.int64(run <= target)
    return min(drawn, classes - 1)
