"""Validation NLL against cumulative training time, from a run's metrics.jsonl.

    .venv/bin/python benchmarks/training_curve.py training/universal-run/metrics.jsonl \\
        --base-steps 13515 --base-minutes 130 --every 2000

A resumed run appends to the same log and its `elapsed_s` starts again from 0: each such
reset begins a new segment, and the segments' times add up. `--base-*` are the steps and
minutes of the checkpoint the run started from (the bundled vocoder for the universal run).
Prints a Markdown table of the validation rows (every `--every` steps, plus each segment's
last), and one row per segment.
"""

from __future__ import annotations

import argparse
import json


def segments(rows: list[dict]) -> list[list[dict]]:
    out: list[list[dict]] = []
    for row in rows:
        if not out or row["elapsed_s"] < out[-1][-1]["elapsed_s"]:
            out.append([])
        out[-1].append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("metrics")
    p.add_argument("--base-steps", type=int, default=0)
    p.add_argument("--base-minutes", type=float, default=0.0)
    p.add_argument("--every", type=int, default=2000)
    args = p.parse_args(argv)
    rows = [json.loads(line) for line in open(args.metrics)]
    print("| step (cumulative) | training hours (cumulative) | valid NLL (bits/sample) |")
    print("|---:|---:|---:|")
    before = args.base_minutes * 60
    summary = []
    for seg in segments(rows):
        valid = [r for r in seg if "valid_bits" in r]
        for r in valid:
            if r["step"] % args.every == 0 or r is valid[-1]:
                hours = (before + r["elapsed_s"]) / 3600
                print(f"| {r['step']:,} ({args.base_steps + r['step']:,}) | {hours:.2f} | "
                      f"{r['valid_bits']:.3f} |")
        summary.append((seg[0]["step"], seg[-1]["step"], seg[-1]["elapsed_s"] / 60,
                        sorted(r["samples_per_s"] for r in seg)[len(seg) // 2]))
        before += seg[-1]["elapsed_s"]
    print("\n| segment | steps | minutes | median samples/s |\n|---|---:|---:|---:|")
    for i, (first, last, minutes, rate) in enumerate(summary, 1):
        print(f"| {i} | {first:,}-{last:,} | {minutes:.1f} | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
