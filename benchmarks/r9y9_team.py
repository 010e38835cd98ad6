"""Where a batch-16 step of r9y9's LJSpeech size goes: one thread against the two-thread
team, in CPU time and wall time.

    .venv/bin/python benchmarks/r9y9_team.py [--precisions fp32,bf16] [--rounds 4]

The cpu backend on a converted r9y9 LJSpeech-sized model (wavenet_core.bench.r9y9), batch
16, three ways timed in turn in one process: one thread (all 16 rows, the whole model),
two threads in group mode (8 rows each, the whole model each) and in split mode (16 rows
each, half the model each). Per way: milliseconds per step of wall time and of process
CPU time (both threads). CPU time is nearly independent of other jobs taking the cores,
so `team CPU / one thread` is what the team costs beyond the work itself (barrier waits,
duplicated per-row work, both threads streaming at once), and `one thread / team wall`
is the speed-up the second core gave. On a busy machine only these ratios mean anything.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from wavenet_core.bench.r9y9 import converted_r9y9  # noqa: E402
from wavenet_core.bench.roofline import cpu_model  # noqa: E402
from wavenet_core.bench.timing import time_generation  # noqa: E402
from wavenet_core.generation.cpu.backend import CpuBackend  # noqa: E402

BATCH = 16


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--steps", type=int, default=16, help="steps per timed call")
    args = p.parse_args()
    torch.set_num_threads(1)
    _, model = converted_r9y9()
    rows = torch.rand(1, args.steps, model.config.mel_channels)
    local_fn = lambda batch, n: rows[:, :n].expand(batch, -1, -1)  # noqa: E731
    print(f"cpu: {cpu_model()}; load average at start {os.getloadavg()[0]:.1f}")
    for precision in args.precisions.split(","):
        ways = {"one thread": CpuBackend(model, 1, precision, split="never"),
                "group": CpuBackend(model, 2, precision, split="never"),
                "split": CpuBackend(model, 2, precision, split="always", core_cache=0)}
        wall = {way: [] for way in ways}
        cpu = {way: [] for way in ways}
        for _ in range(args.rounds):
            for way, backend in ways.items():
                t = time_generation(backend, BATCH, args.steps, repeats=2, warmup_steps=1,
                                    local_fn=local_fn)
                wall[way].append(1e3 * BATCH / t.samples_per_s)
                cpu[way].append(1e3 * BATCH / t.samples_per_cpu_s)
        solo_cpu = statistics.median(cpu["one thread"])
        solo_wall = statistics.median(wall["one thread"])
        for way in ways:
            c, w = statistics.median(cpu[way]), statistics.median(wall[way])
            print(f"{precision} {way:10}: ms/step wall {w:6.2f} (best {min(wall[way]):6.2f}) "
                  f"CPU {c:6.2f} | CPU / one thread {c / solo_cpu:4.2f} | "
                  f"one thread / wall {solo_wall / w:4.2f}")
        print(f"  load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
