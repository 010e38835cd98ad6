"""Side by side: eager PyTorch backend vs the compiled CPU backend, configs A and B.

    .venv/bin/python benchmarks/bench_cpu.py [--steps N] [--torch-steps N] [--repeats R]

Batch 1 runs on 1 thread, batch 16 on 2 threads (both backends). Columns: samples/s of
the eager `torch` and the compiled `cpu` backend (aggregate, wall clock, fastest repeat),
the compiled backend per stream, the compiled/eager ratio, and the compiled backend's
samples per CPU-second (cpu/CPU-s: one core's worth; on a shared, loaded machine the wall
figures drop, this one much less). The full `wavenet bench` builds on
`wavenet_core.generation.timing.time_generation`.
"""

from __future__ import annotations

import argparse
import time

import torch

from wavenet_core.config import CONFIG_A, CONFIG_B
from wavenet_core.generation.cpu_backend import CpuBackend
from wavenet_core.generation.timing import time_generation
from wavenet_core.generation.torch_backend import TorchBackend
from wavenet_core.model import WaveNet

CASES = ((1, 1), (16, 2))   # (batch, threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps per timed cpu call")
    parser.add_argument("--torch-steps", type=int, default=100, help="steps per torch call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--configs", default="A,B")
    args = parser.parse_args()
    configs = {"A": CONFIG_A, "B": CONFIG_B}
    header = (f"{'config':6} {'batch':>5} {'thr':>3} {'torch/s':>10} {'cpu/s':>10} "
              f"{'cpu/stream':>10} {'ratio':>7} {'cpu/CPU-s':>10}")
    print(header)
    print("-" * len(header))
    for name in args.configs.split(","):
        torch.manual_seed(0)
        model = WaveNet(configs[name]).eval()
        start = time.perf_counter()
        backends = {threads: CpuBackend(model, threads=threads) for _, threads in CASES}
        for backend in backends.values():
            backend.warmup()
        print(f"# config {name}: compile/load + warmup {time.perf_counter() - start:.1f}s")
        eager = TorchBackend(model)
        for batch, threads in CASES:
            torch.set_num_threads(threads)
            slow = time_generation(eager, batch, args.torch_steps, args.repeats)
            fast = time_generation(backends[threads], batch, args.steps, args.repeats)
            print(f"{name:6} {batch:5d} {threads:3d} {slow.samples_per_s:10,.0f} "
                  f"{fast.samples_per_s:10,.0f} {fast.per_stream_samples_per_s:10,.0f} "
                  f"{fast.samples_per_s / slow.samples_per_s:6.1f}x "
                  f"{fast.samples_per_cpu_s:10,.0f}", flush=True)


if __name__ == "__main__":
    main()
