"""The dot formats bf16a and int8a (cpu/dot.py): the instruction and its portable path give
the same bits, and a matrix product is exactly its definition, row by row.

- `vdpbf16ps` (AVX512-BF16) against the portable path on adversarial inputs: products of
  any exponent, partial sums that cancel below the smallest normal (flushed), starting
  values below it (treated as zero); `vpdpbusd` (VNNI) on every byte. Skipped where the CPU
  lacks the instruction (the portable path alone is then what runs, and the
  definition test below still pins it down).
- `_matmul` in each dot format against a numpy emulation of the definition (docs/cpu-kernel.md,
  "Dot formats"), for every register block (1 to 9 rows, full panels and tails): bitwise.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from numba.extending import intrinsic

from wavenet_core.generation.cpu.dot import NATIVE_BF16, NATIVE_VNNI, flush_start, mac
from wavenet_core.generation.cpu.kernels import _matmul, scratch_words
from wavenet_core.generation.cpu.simd import F32X16, _vload, _vstore
from wavenet_core.generation.cpu.weights import encode_panels, flushed_bf16_bits, rounded

TINY = np.float32(2.0 ** -126)


def _step(kind, portable):
    @intrinsic
    def step(typingctx, w, x, acc):
        def codegen(context, builder, sig, args):
            start = flush_start(builder, args[2], portable) if kind == "bf16a" else args[2]
            return mac(builder, kind, args[0], args[1], start, portable)
        return F32X16(F32X16, F32X16, F32X16), codegen

    @njit
    def run(w, x, acc, out):
        _vstore(out, 0, step(_vload(w, 0), _vload(x, 0), _vload(acc, 0)))
    return run


def _both(kind, w, x, acc):
    """(instruction, portable path) on 16-lane operands given as float32 bit carriers."""
    results = []
    for portable in (False, True):
        out = np.zeros(16, np.float32)
        _step(kind, portable)(w.view(np.float32), x.view(np.float32), acc.view(np.float32), out)
        results.append(out.view(np.uint32))
    return results


def _bf16(values):
    return flushed_bf16_bits(np.asarray(values, np.float32))


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no AVX512-BF16 (vdpbf16ps)")
def test_vdpbf16ps_equals_its_portable_path_bitwise():
    rng = np.random.default_rng(0)
    for trial in range(300):
        e = rng.integers(-40, 40, 3)
        w = _bf16(rng.standard_normal(32) * 2.0 ** e[0])
        x = _bf16(rng.standard_normal(32) * 2.0 ** e[1])
        acc = (rng.standard_normal(16) * 2.0 ** (e[0] + e[1] + rng.integers(-30, 30)))
        acc = acc.astype(np.float32)
        if trial % 3 == 0:     # the first product cancels the start to below the normals
            w = _bf16(np.full(32, 2.0 ** -63))
            x = _bf16(np.tile([2.0 ** -63, -(2.0 ** -63) * 0.99], 16))
            acc = np.full(16, np.float32(2.0 ** -126) * np.float32(rng.uniform(1, 3)),
                          np.float32)
        if trial % 5 == 1:     # starting values below the smallest normal
            acc = (rng.uniform(-1, 1, 16) * TINY).astype(np.float32)
        native, portable = _both("bf16a", w.view(np.uint32), x.view(np.uint32),
                                 acc.view(np.uint32))
        np.testing.assert_array_equal(native, portable, err_msg=f"trial {trial}")


@pytest.mark.skipif(not NATIVE_VNNI, reason="this CPU has no AVX-512 VNNI (vpdpbusd)")
def test_vpdpbusd_equals_its_portable_path_bitwise():
    rng = np.random.default_rng(1)
    for _ in range(300):
        w = rng.integers(0, 256, 64).astype(np.uint8).view(np.uint32)
        x = rng.integers(-128, 128, 64).astype(np.int8).view(np.uint32)
        acc = rng.integers(-2 ** 30, 2 ** 30, 16).astype(np.int32).view(np.uint32)
        native, portable = _both("int8a", w, x, acc)
        np.testing.assert_array_equal(native, portable)
        expected = acc.view(np.int32) + (w.view(np.uint8).astype(np.int64).reshape(16, 4)
                                         * x.view(np.int8).reshape(16, 4)).sum(axis=1)
        np.testing.assert_array_equal(native.view(np.int32), expected)


# -- a matrix product is its definition --------------------------------------------------

def _bf16_round(x):
    """Activations as bf16a packs them: nearest even, below the smallest normal -> 0."""
    return (flushed_bf16_bits(x).astype(np.uint32) << 16).view(np.float32)


def _flush(a):
    return np.where(np.abs(a) < TINY, np.float32(0) * a, a).astype(np.float32)


def expected_bf16a(w, x, init):
    wb, xb = rounded(w, "bf16a"), _bf16_round(x)
    acc = _flush(init.copy())
    for i in range(0, w.shape[0], 2):       # input 2i + 1, then 2i: each sum rounded
        acc = _flush(acc + xb[:, i + 1, None] * wb[i + 1])
        acc = _flush(acc + xb[:, i, None] * wb[i])
    return acc


def expected_int8a(w, x, init):
    peak = np.abs(x).max(axis=1)
    inv = np.divide(np.float32(127), peak, out=np.zeros_like(peak), where=peak > 0)
    q = np.rint(x * inv[:, None]).astype(np.int64)
    codes, col_scale = _int8_codes(w)
    acc = (q @ codes).astype(np.float32)
    scale = col_scale[None, :] * (peak / np.float32(127)).astype(np.float32)[:, None]
    return (acc.astype(np.float64) * scale.astype(np.float64) + init).astype(np.float32)


def _int8_codes(w):
    from wavenet_core.generation.cpu.weights import int8_codes

    codes, scale = int8_codes(w)
    return codes.astype(np.int64), scale


@pytest.mark.parametrize("precision", ["bf16a", "int8a"])
@pytest.mark.parametrize("n_in,n_out", [(16, 16), (48, 64), (144, 208), (32, 144)])
def test_matmul_is_exactly_the_definition_row_by_row(precision, n_in, n_out):
    rng = np.random.default_rng(n_in * 1000 + n_out)
    w = (rng.standard_normal((n_in, n_out)) * 0.3).astype(np.float32)
    flat, scales = encode_panels(w, precision)
    expected = {"bf16a": expected_bf16a, "int8a": expected_int8a}[precision]
    for n in range(1, 10):
        x = (rng.standard_normal((n, n_in)) * rng.uniform(0.1, 4, (n, 1))).astype(np.float32)
        if n == 3:
            x[1] = 0.0                       # an all-zero row: scale 0, every code 0
        init = rng.standard_normal((n, n_out)).astype(np.float32)
        y = np.zeros(n * n_out, np.float32)
        scratch = np.zeros(n * scratch_words(n_in), np.float32)
        _matmul(flat, scales, 0, 0, n_in, n_out, x.ravel(), 0, n_in, init.ravel(), 0, n_out,
                y, 0, n_out, n, scratch)
        np.testing.assert_array_equal(y.reshape(n, n_out), expected(w, x, init),
                                      err_msg=f"{precision} {n} rows")
