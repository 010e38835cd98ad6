"""`wavenet bench [--json]`: side-by-side generation speed with ratios (wavenet_core.benchmark)."""

from __future__ import annotations

import argparse
import json
import platform
import sys

from wavenet_core.benchmark import ratio_table, run_benchmark


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--configs", default="A,B", help="comma-separated: A, B")
    p.add_argument("--steps", type=int, default=4000, help="samples per timed compiled call")
    p.add_argument("--eager-steps", type=int, default=150, help="samples per eager call")
    p.add_argument("--naive-samples", type=int, default=30)
    p.add_argument("--precisions", default="fp32,bf16,int8",
                   help="comma-separated cpu backend weight formats")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    log = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
    result = run_benchmark(tuple(args.configs.split(",")), args.steps, args.eager_steps,
                           args.naive_samples, tuple(args.precisions.split(",")), log=log)
    result["machine"] = {"processor": platform.processor() or platform.machine(),
                         "python": platform.python_version()}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print()
        print(ratio_table(result))
    return 0
