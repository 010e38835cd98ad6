"""The runner's Python work per step on a mel stream: a step's conditioning made stream by
stream (`session.conditioning` per slot, then `MelFrames.stack`, as the runner did) against
the whole batch at once (`session.batch_conditioning`, what it does now), interleaved in one
process, with the kernel's step of the same size beside them for scale.

    .venv/bin/python benchmarks/step_conditioning.py [--checkpoint models/vocoder.safetensors]
        [--streams 16] [--samples 256] [--rounds 9]

Prints microseconds per step (median of the rounds) and the ratio; the two batches are
checked to be bitwise equal.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wavenet_core.audio.lpc import timing_rows  # noqa: E402
from wavenet_core.bench.roofline import cpu_model  # noqa: E402
from wavenet_core.generation.conditioning import WholeMel  # noqa: E402
from wavenet_core.generation.mel_frames import MelFrames  # noqa: E402
from wavenet_core.generation.precision import recorded_costs  # noqa: E402
from wavenet_core.generation.registry import make_backend  # noqa: E402
from wavenet_core.generation.session import GenerationSession  # noqa: E402
from wavenet_core.model.checkpoint import load_checkpoint  # noqa: E402


def per_us(fn, reps: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps * 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=ROOT / "models" / "vocoder.safetensors")
    p.add_argument("--streams", type=int, default=16)
    p.add_argument("--samples", type=int, default=256, help="samples per step (one hop)")
    p.add_argument("--rounds", type=int, default=9)
    args = p.parse_args()
    model = load_checkpoint(args.checkpoint)
    # the precision the server picks: "auto" within the checkpoint's recorded NLL costs
    backend = make_backend(model, "cpu", "cpu", "auto", recorded_costs(args.checkpoint))
    backend.warmup()
    session = GenerationSession(backend, args.streams)
    rng = np.random.default_rng(0)
    hop = model.config.mel.hop_length
    low = model.config.mel_mean - model.config.mel_std     # values inside the recipe's range
    for slot in range(args.streams):
        mel = (low + 0.1 * rng.standard_normal((400, model.config.mel_channels)))
        session.open(slot, seed=slot, mel=WholeMel(mel.astype(np.float32), model.config))
        session.slots[slot].position = int(rng.integers(0, 100 * hop))
    slots, k = list(range(args.streams)), args.samples

    def each():
        return MelFrames.stack([session.conditioning(s, k) for s in slots])

    def batch():
        return session.batch_conditioning(slots, k)

    a, b = each(), batch()
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.phase, b.phase)
    t_each, t_batch = [], []
    for _ in range(args.rounds):
        t_each.append(per_us(each, 200))
        t_batch.append(per_us(batch, 200))
    rows = timing_rows(model.config, len(slots), k)
    kernel = per_us(lambda: backend.generate(session.state, slots, k, b, **rows), 5)
    e, bt = statistics.median(t_each), statistics.median(t_batch)
    print(f"{cpu_model()}; {args.checkpoint.name} ({backend.precision}), {args.streams} "
          f"streams x {k} samples per step")
    print(f"conditioning per stream then stack {e:8.1f} us/step")
    print(f"batch_conditioning                 {bt:8.1f} us/step   ratio {e / bt:.2f}x")
    print(f"the kernel's step (for scale)      {kernel:8.1f} us/step   saved "
          f"{(e - bt) / kernel:.1%} of it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
