"""`wavenet bench [--json]`: side-by-side generation speed with ratios (wavenet_core.bench.cpu).

`wavenet bench --gpu` runs the GPU rows instead (wavenet_core.bench.gpu): the triton
kernel in fp32 and fp16 beside the CUDA graph, with the GPU's measured limits.
`wavenet bench --gpu-model` needs no GPU: it compiles the triton kernel for sm_90 and prints
its static profile and the latency model's ESTIMATES for an H100 and an H200
(wavenet_core.bench.gpu_profile, gpu_model).
`wavenet bench --r9y9` runs a converted r9y9-sized vocoder beside r9y9's own generator
(wavenet_core.bench.r9y9; needs the wavenet-vocoder package): cpu rows in fp32, bf16 and
the dot formats bf16a and int8a, then each precision's output rounding against fp32.
`wavenet bench --excitation` runs config B with a mel, plain against the excitation output,
each with and without voicing-shaped sampling, batch 1 and 16 (wavenet_core.bench.
excitation_cost).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys

from wavenet_core.bench.cpu import ratio_table, run_benchmark


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--configs", default="A,B", help="comma-separated: A, B")
    p.add_argument("--steps", type=int, default=4000, help="samples per timed compiled call")
    p.add_argument("--eager-steps", type=int, default=150, help="samples per eager call")
    p.add_argument("--naive-samples", type=int, default=30)
    p.add_argument("--precisions", default="fp32,bf16,int8",
                   help="comma-separated cpu backend weight formats")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--gpu", action="store_true",
                   help="GPU rows: triton fp32/fp16 and cuda-graph, batches 1..1024")
    p.add_argument("--gpu-model", action="store_true",
                   help="no GPU needed: the kernel's sm_90 build, profiled, and estimated speed")
    p.add_argument("--batches", default="1,16,64,256,1024", help="with --gpu")
    p.add_argument("--device", default="cuda", help="with --gpu (cpu: Triton interpreter)")
    p.add_argument("--r9y9", action="store_true",
                   help="a converted r9y9 MoL LJSpeech-sized model vs r9y9's incremental_forward")
    p.add_argument("--r9y9-steps", type=int, default=256, help="with --r9y9: samples of theirs")
    p.add_argument("--excitation", action="store_true",
                   help="the excitation output's and voicing shaping's cost (config B + mel)")
    p.add_argument("--rounds", type=int, default=7, help="with --excitation: calls per row")


def run(args: argparse.Namespace) -> int:
    log = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
    if args.gpu:
        return _run_gpu(args, log)
    if args.gpu_model:
        return _run_gpu_model(args)
    if args.excitation:
        from wavenet_core.bench.excitation_cost import cost_table, run_excitation_cost

        result = run_excitation_cost(args.steps, args.rounds, tuple(args.precisions.split(",")),
                                     log=log)
        print(json.dumps(result, indent=1) if args.json else "\n" + cost_table(result))
        return 0
    if args.r9y9:
        from wavenet_core.bench.r9y9 import r9y9_table, run_r9y9_benchmark

        result = run_r9y9_benchmark(args.r9y9_steps, log=log)
        print(json.dumps(result, indent=1) if args.json else "\n" + r9y9_table(result))
        return 0
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


def _run_gpu(args: argparse.Namespace, log) -> int:
    from wavenet_core.bench.gpu import gpu_table, run_gpu_benchmark

    result = run_gpu_benchmark(tuple(args.configs.split(",")),
                               tuple(int(b) for b in args.batches.split(",")),
                               steps=args.steps, device=args.device, log=log,
                               # the interpreter (cpu) is for checking the path: tiny limits
                               limit_sizes=(1024, 8192) if args.device != "cpu" else (8, 256))
    print(json.dumps(result, indent=1) if args.json else "\n" + gpu_table(result))
    return 0


def _run_gpu_model(args: argparse.Namespace) -> int:
    from wavenet_core.bench.gpu_model import DEVICES, estimate, model_table
    from wavenet_core.bench.gpu_profile import PRECISIONS, Unavailable, profiles

    try:
        found = profiles(tuple(args.configs.split(",")), PRECISIONS)
    except Unavailable as exc:
        print(f"no static GPU profile here: {exc}", file=sys.stderr)
        return 3
    if args.json:
        for p in found:
            p["estimates"] = {name: estimate(p, device) for name, device in DEVICES.items()}
        print(json.dumps({"estimated": True, "profiles": found}, indent=1))
    else:
        print(model_table(found))
    return 0
