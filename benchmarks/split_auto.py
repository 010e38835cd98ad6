"""One stream on two threads, over minutes: `split="auto"` against each fixed mode.

    .venv/bin/python benchmarks/split_auto.py [--precision bf16] [--minutes 4] [--steps 4000]

Whether the split mode pays can change from minute to minute (on a 2-vCPU AMD EPYC the
team's speed halved whenever the host moved the vCPUs apart; docs/cpu-kernel.md, "Threads"),
so one short timing says little about the engine's choice. This makes config-B calls of
`--steps` samples on three backends in turn (auto, one thread, split always), each with one
stream, for `--minutes`, so all three see the same machine, and prints each one's samples/s
over its own busy time every 100 rounds and at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from wavenet_core.bench.roofline import cpu_model  # noqa: E402
from wavenet_core.generation.cpu.backend import CpuBackend  # noqa: E402
from wavenet_core.model.config import CONFIG_B  # noqa: E402
from wavenet_core.model.wavenet import WaveNet  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--precision", default="bf16")
    p.add_argument("--minutes", type=float, default=4.0)
    p.add_argument("--steps", type=int, default=4000)
    args = p.parse_args()
    torch.manual_seed(0)
    model = WaveNet(CONFIG_B).eval()
    backends = {"auto": CpuBackend(model, threads=2, precision=args.precision, split="auto"),
                "one": CpuBackend(model, threads=1, precision=args.precision),
                "split": CpuBackend(model, threads=2, precision=args.precision,
                                    split="always")}
    states, busy, made = {}, dict.fromkeys(backends, 0.0), dict.fromkeys(backends, 0)
    for name, backend in backends.items():
        backend.warmup()
        states[name] = backend.new_state(1)
        backend.open_slot(states[name], 0, seed=0)

    def report() -> str:
        return "  ".join(f"{n} {made[n] / busy[n]:,.0f}" for n in backends)

    end, rounds = time.monotonic() + 60 * args.minutes, 0
    while time.monotonic() < end:
        for name, backend in backends.items():
            began = time.perf_counter()
            backend.generate(states[name], [0], args.steps)
            busy[name] += time.perf_counter() - began
            made[name] += args.steps
        rounds += 1
        if rounds % 100 == 0:
            print(f"{time.strftime('%H:%M:%S')} samples/s  {report()}", flush=True)
    print(f"{cpu_model()}, config B, {args.precision}, {rounds} rounds of {args.steps} steps: "
          f"samples/s  {report()}")


if __name__ == "__main__":
    main()
