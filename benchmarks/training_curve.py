"""Validation NLL against cumulative training time, from a run's metrics.jsonl.

    .venv/bin/python benchmarks/training_curve.py training/universal-run/metrics.jsonl \\
        --base-steps 13515 --base-minutes 130 --every 2000

A resumed run appends to the same log and its `elapsed_s` starts again from 0: each such
reset begins a new segment. A resume continues from the last checkpoint, which can be
before the last logged step: the steps the stopped process made after that checkpoint are
not in the model, so the curve drops them and counts time up to the checkpoint's step only.
`--base-*` are the steps and minutes of the checkpoint the run started from (the bundled
vocoder for the universal run).
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


def lineage(rows: list[dict], base_s: float = 0.0) -> list[tuple[dict, float]]:
    """(row, cumulative seconds) for the steps the final model went through."""
    out: list[tuple[dict, float]] = []
    for seg in segments(rows):
        out = [(r, t) for r, t in out if r["step"] < seg[0]["step"]]
        before = out[-1][1] if out else base_s
        out += [(r, before + r["elapsed_s"]) for r in seg]
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
    valid = [(r, t) for r, t in lineage(rows, args.base_minutes * 60) if "valid_bits" in r]
    for r, t in valid:
        if r["step"] % args.every == 0 or r is valid[-1][0]:
            print(f"| {r['step']:,} ({args.base_steps + r['step']:,}) | {t / 3600:.2f} | "
                  f"{r['valid_bits']:.3f} |")
    summary = [(seg[0]["step"], seg[-1]["step"], seg[-1]["elapsed_s"] / 60,
                sorted(r["samples_per_s"] for r in seg)[len(seg) // 2])
               for seg in segments(rows)]
    print("\n| segment | steps | minutes | median samples/s |\n|---|---:|---:|---:|")
    for i, (first, last, minutes, rate) in enumerate(summary, 1):
        print(f"| {i} | {first:,}-{last:,} | {minutes:.1f} | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
