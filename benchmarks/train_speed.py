"""Training samples/s, today's plain step against the fused one, in one run (issue 26, 3).

    .venv/bin/python benchmarks/train_speed.py [--threads 1 2] [--rounds 6] [--precision P]

The bundled vocoder's shape (2 stacks x 9 layers, residual 64, skip 128, mel 80), batch 4,
window 4000, with and without `excitation: lpc`, in bfloat16 autocast or float32
(`--precision auto`, the default: what `wavenet train` picks on this CPU, bfloat16 only
where it is native). Per thread count: the CPU's matrix peak in that type (the best of
several [B*W, 128] x [128, 128] products), then for
each model alternating rounds of plain and fused steps (wavenet_core/bench/training.py);
printed: samples/s of each, the ratio, FLOPs per training sample counted from the config,
each step's share of the peak, the loss of each on the same windows and weights, the
time of one optimizer step of each, and the CPU model. Pause other heavy processes while it runs.
"""

from __future__ import annotations

import argparse

import torch

from wavenet_core.bench.roofline import cpu_model
from wavenet_core.bench.training import compare_recipes, matmul_peak, recipe_config
from wavenet_core.training.train import use_bfloat16


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1],
                   help="torch threads, one measurement each (default 1, as the runs train)")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps-per-round", type=int, default=2)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--window", type=int, default=4000)
    p.add_argument("--excitation", nargs="+", default=["none", "lpc"], choices=["none", "lpc"])
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    args = p.parse_args()
    cpu = cpu_model()
    bfloat16 = use_bfloat16(args.precision)
    kind = "bf16" if bfloat16 else "fp32"
    print(f"CPU: {cpu}; torch {torch.__version__}; batch {args.batch}, window {args.window}, "
          f"{'bfloat16 autocast' if bfloat16 else 'float32'}", flush=True)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        peak = matmul_peak(args.batch * args.window,
                           dtype=torch.bfloat16 if bfloat16 else torch.float32)
        print(f"{threads} thread(s): {kind} matmul peak {peak / 1e9:.1f} GFLOP/s "
              f"([{args.batch * args.window}, 128] x [128, 128], best of 20)", flush=True)
        for excitation in args.excitation:
            print(f"excitation {excitation}, {threads} thread(s):", flush=True)
            r = compare_recipes(recipe_config(excitation), args.batch, args.window,
                                args.rounds, args.steps_per_round, bfloat16=bfloat16,
                                log=lambda line: print(line, flush=True))
            rows.append((threads, excitation, peak, r))
    print(f"\nCPU: {cpu}. Samples/s: wall clock (per CPU second), median step. Share: "
          f"samples/s x FLOPs per sample / the {kind} matmul peak.")
    print("Plain: today's recipe (autograd step, torch's default Adam); fused: `wavenet "
          "train`'s (fused step, fused Adam); Adam ms: one optimizer step of each.")
    print("| threads | excitation | plain samples/s | fused samples/s | ratio | "
          "MFLOP/sample | peak GFLOP/s | plain share | fused share | loss plain / fused | "
          "Adam ms plain / fused |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for threads, excitation, peak, r in rows:
        flops = r["flops_per_sample"]
        print(f"| {threads} | {excitation} | {r['plain']:,.0f} ({r['plain_cpu']:,.0f}) | "
              f"{r['fused']:,.0f} ({r['fused_cpu']:,.0f}) | {r['ratio']:.2f}x "
              f"({r['ratio_cpu']:.2f}x) | {flops / 1e6:.2f} | {peak / 1e9:.1f} | "
              f"{r['plain'] * flops / peak:.1%} ({r['plain_cpu'] * flops / peak:.1%}) | "
              f"{r['fused'] * flops / peak:.1%} ({r['fused_cpu'] * flops / peak:.1%}) | "
              f"{r['loss_plain']:.5f} / {r['loss_fused']:.5f} | "
              f"{r['adam_plain_ms']:.1f} / {r['adam_fused_ms']:.1f} |")


if __name__ == "__main__":
    main()
