"""The kernel's matrix product alone, against its instruction's roof (issue 32 item 1).

    .venv/bin/python benchmarks/matmul_alone.py [--precision int8a] [--rows 8] [--rounds 15]

Why: in a batch-16 step the layers' matrices are about 60% of the time (kernel_ab.py), yet
the step runs at 14-25% of the dot roof. This times `cpu.kernels._matmul` by itself on
random weights packed as the backend packs them (64-byte aligned, `encode_panels`), with
nothing else between calls, so what it prints is the micro-kernels' own rate:
- "vocoder": the bundled vocoder's 18 layers in turn, each a gate matrix 128 -> 128 and a
  residual/skip matrix 64 -> 192, on `--rows` rows (one thread's share of batch 16), their
  weights (516 KB in int8a) from L2;
- "one layer": the same 36 calls on one layer's weights (L1-hot);
- single matrices from K = 64 to 2048 inputs, where the chains' start and end (the
  correction, the scales) matter less.
Each case is timed by the thread's CPU time, best of `--rounds`; printed in GOP/s (2 per
multiply-add, the activation packing included) and as a share of the roof of the
instruction the format multiplies with (`roofline._chains`: the FMA loop for fp32, bf16,
int8 and for a dot format without its instruction), with the CPU model.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wavenet_core.bench.roofline import cpu_model, fma_peak_gflops  # noqa: E402
from wavenet_core.generation.cpu.dot import GROUP, group_of, pack_rows  # noqa: E402
from wavenet_core.generation.cpu.kernels import _matmul, _panels, scratch_words  # noqa: E402
from wavenet_core.generation.cpu.packing import aligned  # noqa: E402
from wavenet_core.generation.cpu.weights import encode_panels  # noqa: E402

LAYERS = 18
SHAPES = ((128, 128), (64, 192))      # a layer's (inputs, outputs): gate, residual/skip


@njit(nogil=True)
def _calls(reps, w, s, wo, so, k, n_out, x, init, y, scratch, n, packing):
    """reps times: _matmul number i with inputs k[i], outputs n_out[i] at offsets wo[i], so[i];
    without `packing` (dot formats) only its micro-kernels, on rows packed once before."""
    qld = scratch_words(k.max())
    if not packing:
        pack_rows(w, x, 0, k.max(), k.max(), n, scratch, qld)
    for _ in range(reps):
        for i in range(len(wo)):
            if packing:
                _matmul(w, s, wo[i], so[i], k[i], n_out[i], x, 0, k[i], init, 0, n_out[i],
                        y, 0, n_out[i], n, scratch)
            else:
                _panels(w, s, wo[i], so[i], k[i] // group_of(w), n_out[i], scratch, 0,
                        qld, init, 0, n_out[i], y, 0, n_out[i], n)


def case(rng, precision: str, shapes: list, rows: int, same_weights: bool, rounds: int,
         packing: bool = True):
    """(GOP/s, seconds per call of them all, the last call's output rows [rows, n_out]) of
    `shapes` in turn; with `same_weights` every call reads the first's."""
    stored = list(dict.fromkeys(shapes)) if same_weights else shapes
    packed = [encode_panels(rng.standard_normal(shape).astype(np.float32) * 0.1, precision)
              for shape in stored]
    starts = np.cumsum([[0, 0]] + [[len(w), len(s)] for w, s in packed], axis=0)
    w = aligned(np.concatenate([p[0] for p in packed]), packed[0][0].dtype)
    s = aligned(np.concatenate([p[1] for p in packed]))
    which = [stored.index(sh) if same_weights else i for i, sh in enumerate(shapes)]
    wo, so = (np.ascontiguousarray(starts[which, j], np.int64) for j in (0, 1))
    k = np.array([sh[0] for sh in shapes], np.int64)
    n_out = np.array([sh[1] for sh in shapes], np.int64)
    widest = max(max(sh) for sh in shapes)
    x = aligned(rng.standard_normal(rows * widest))
    init, y = aligned(np.zeros(rows * widest)), aligned(np.zeros(rows * widest))
    scratch = aligned(np.zeros(rows * scratch_words(widest)))
    ops = 2 * rows * int((k * n_out).sum())
    reps = max(1, 4_000_000 // ops * rows)
    _calls(1, w, s, wo, so, k, n_out, x, init, y, scratch, rows, packing)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.thread_time()
        _calls(reps, w, s, wo, so, k, n_out, x, init, y, scratch, rows, packing)
        best = min(best, (time.thread_time() - t0) / reps)
    return ops / best / 1e9, best, y[:rows * shapes[-1][1]].reshape(rows, -1).copy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--precision", default="int8a",
                   choices=["fp32", "bf16", "int8", "bf16a", "int8a"])
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    roof = fma_peak_gflops(precision=args.precision)
    print(f"{cpu_model()}; {args.precision}, {args.rows} rows, one thread; roof "
          f"{roof:.0f} GOP/s" + ("; with the activation packing, then without"
                                 if GROUP[args.precision] > 1 else ""), flush=True)
    vocoder = [shape for _ in range(LAYERS) for shape in SHAPES]
    rows = [("vocoder: 18 layers' matrices", vocoder, False),
            ("one layer's weights, 36 calls", vocoder, True)]
    rows += [(f"K={k}, N={n}", [(k, n)], False)
             for k, n in ((64, 192), (128, 128), (512, 128), (2048, 64))]
    dot = GROUP[args.precision] > 1
    for name, shapes, same in rows:
        line = f"  {name:32}"
        for packing in (True, False) if dot else (True,):
            gops, seconds, _ = case(rng, args.precision, shapes, args.rows, same,
                                    args.rounds, packing)
            line += (f" {gops:5.0f} GOP/s {gops / roof:6.1%} of the roof "
                     f"({seconds * 1e6 / args.rows:.2f} us/row)")
        print(line, flush=True)


if __name__ == "__main__":
    main()
