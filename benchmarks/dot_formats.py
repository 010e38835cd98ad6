"""The dot formats against the weight formats, side by side in one process (issue 32).

    .venv/bin/python benchmarks/dot_formats.py [--rounds 8] [--steps 2000] [--batch 16]

The bundled vocoder (models/vocoder.safetensors, mel as frames as the server sends it) on
`--batch` streams over two threads (group mode), every precision in turn for `--rounds`
rounds, so all see the same machine; then batch 1 on one thread. Prints each precision's
best and median samples/s and its ratio to the best of fp32, bf16 and int8 (today's
formats), with the CPU model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wavenet_core.audio.lpc import timing_rows  # noqa: E402
from wavenet_core.bench.cpu import _mel_frames, _model  # noqa: E402
from wavenet_core.bench.roofline import cpu_model  # noqa: E402
from wavenet_core.generation.cpu.backend import CpuBackend  # noqa: E402

PRECISIONS = ("fp32", "bf16", "int8", "bf16a", "int8a")


def rates(model, batch: int, threads: int, steps: int, rounds: int) -> dict[str, list[float]]:
    frames = _mel_frames(model)
    backends = {p: CpuBackend(model, threads=threads, precision=p, split="never")
                for p in PRECISIONS}
    states = {}
    for p, backend in backends.items():
        backend.warmup()
        states[p] = state = backend.new_state(batch)
        for slot in range(batch):
            backend.open_slot(state, slot, seed=slot)
    out = {p: [] for p in PRECISIONS}
    for _ in range(rounds):
        for p, backend in backends.items():
            local = frames(batch, steps)
            rows = timing_rows(backend.config, batch, steps)
            start = time.perf_counter()
            backend.generate(states[p], list(range(batch)), steps, local, **rows)
            out[p].append(batch * steps / (time.perf_counter() - start))
    return out


def report(title: str, out: dict[str, list[float]]) -> None:
    today = max(max(out[p]) for p in ("fp32", "bf16", "int8"))
    today_med = max(statistics.median(out[p]) for p in ("fp32", "bf16", "int8"))
    print(f"{title} ({cpu_model()})")
    for p, values in out.items():
        print(f"  {p:5} best {max(values):9,.0f}  median {statistics.median(values):9,.0f}"
              f"  best/today's best {max(values) / today:5.2f}"
              f"  median/today's best median {statistics.median(values) / today_med:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    model, costs = _model("V")
    print("recorded NLL cost (bits/sample):", costs)
    report(f"vocoder batch {args.batch}, 2 threads",
           rates(model, args.batch, 2, args.steps, args.rounds))
    report("vocoder batch 1, 1 thread", rates(model, 1, 1, args.steps, args.rounds))


if __name__ == "__main__":
    main()
