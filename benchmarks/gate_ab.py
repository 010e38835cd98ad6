"""The gate's division against division-free forms, side by side in one process (issue 32
item 2): what the one division of `cpu.simd._gated` costs in a batch-16 step's gate.

    .venv/bin/python benchmarks/gate_ab.py [--rounds 25] [--reps 20000]

Each form runs the loop `run_rows` runs per layer (8 rows x 64 channels of the vocoder, one
thread of a batch-16 call) `--reps` times, each form in turn for `--rounds` rounds, timed
by the thread's CPU time (steadier than the wall clock on a loaded machine):
- div: the kernel's gate, pf (qg + pg) / (2 qf qg);
- mul: the same with the division made a multiplication (wrong values): the floor a
  division-free form could reach;
- newton: 1 / (2 qf qg) from a bit-pattern guess and three Newton steps (fma and integer
  ops only, so an AVX2 build would give the same bits; AVX-512's `vrcp14ps` would not).
Prints each form's best and median CPU time relative to div, its largest error against
float64, and the CPU model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wavenet_core.bench.roofline import cpu_model  # noqa: E402
from wavenet_core.generation.cpu.simd import (  # noqa: E402
    _HALF,
    _JIT,
    _TWO,
    _float_from_bits,
    _gated,
    _tanh_ratio,
)

_FORM = {**_JIT, "cache": False}
_MAGIC = np.int64(0x7EF311C7)      # 1/x's bit pattern, roughly: a guess within ~12%


@intrinsic
def _bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.sext(builder.bitcast(args[0], ir.IntType(32)), ir.IntType(64))
    return types.int64(types.float32), codegen


@njit(inline="always", **_FORM)
def _mul(f, g):
    pf, qf = _tanh_ratio(f)
    pg, qg = _tanh_ratio(_HALF * g)
    return pf * (qg + pg) * (_TWO * qf * qg)


@njit(inline="always", **_FORM)
def _newton(f, g):
    pf, qf = _tanh_ratio(f)
    pg, qg = _tanh_ratio(_HALF * g)
    d = _TWO * qf * qg
    y = _float_from_bits(_MAGIC - _bits(d))
    y = y * (_TWO - d * y)
    y = y * (_TWO - d * y)
    y = y * (_TWO - d * y)
    return pf * (qg + pg) * y


def _loop(form):
    @njit(**_FORM)
    def run(h, z, reps, jt):
        n = h.shape[0] // (2 * jt)
        for _ in range(reps):
            for r in range(n):
                hf = h[r * 2 * jt:r * 2 * jt + jt]
                hg = h[r * 2 * jt + jt:(r + 1) * 2 * jt]
                zr = z[r * jt:(r + 1) * jt]
                for o in range(jt):
                    zr[o] = form(hf[o], hg[o])
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--reps", type=int, default=20000)
    args = parser.parse_args()
    rows, jt = 8, 64
    h = (np.random.default_rng(0).standard_normal(rows * 2 * jt) * 3).astype(np.float32)
    pairs = h.reshape(rows, 2, jt).astype(np.float64)
    exact = (np.tanh(pairs[:, 0]) / (1 + np.exp(-pairs[:, 1]))).ravel()
    forms = {"div": _loop(_gated), "mul": _loop(_mul), "newton": _loop(_newton)}
    errors = {}
    for name, run in forms.items():
        z = np.zeros(rows * jt, np.float32)
        run(h, z, 1, jt)
        errors[name] = np.abs(z - exact).max()
    times = {name: [] for name in forms}
    z = np.zeros(rows * jt, np.float32)
    for _ in range(args.rounds):
        for name, run in forms.items():
            start = time.thread_time()
            run(h, z, args.reps, jt)
            times[name].append(time.thread_time() - start)
    print(f"gate, {rows} rows x {jt} channels, CPU time relative to div ({cpu_model()})")
    for name, values in times.items():
        print(f"  {name:7} best {min(values) / min(times['div']):5.3f}  median"
              f" {statistics.median(values) / statistics.median(times['div']):5.3f}"
              f"  max error {errors[name]:.2e}")


if __name__ == "__main__":
    main()
