"""Whether the compiled CPU kernel of two revisions gives the same bits (issue 32: a change
to the step's order must keep every precision's results bit-identical).

    .venv/bin/python benchmarks/kernel_same.py main .     [--precisions int8a bf16a ...]

Each revision's wavenet_core is loaded as a package of its own name (as kernel_ab.py does).
On the bundled vocoder (mel as frames: 16 streams, group mode on two threads, and one
stream split over two) and on random models (residual widths that are and are not a whole
number of vectors, kernel sizes 2 and 3, mel or none, an excitation output), in every
precision: the teacher-forced outputs (random models) and the sampled codes and final
rings (all) of the second revision must equal the first's exactly. Prints one line per
case and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from kernel_ab import materialize  # noqa: E402

from tests.helpers.tiny_models import random_model  # noqa: E402
from wavenet_core.audio.lpc import timing_rows  # noqa: E402
from wavenet_core.model.checkpoint import save_checkpoint  # noqa: E402
from wavenet_core.model.config import MelConfig, WaveNetConfig  # noqa: E402

PRECISIONS = ("fp32", "bf16", "int8", "bf16a", "int8a")
BASE = WaveNetConfig(layers_per_stack=3, stacks=2, dilation_cycle=(1, 3, 5),
                     residual_channels=32, skip_channels=40, classes=256, mel_channels=6,
                     mel=MelConfig(n_mels=6, hop_length=16))
RANDOM = {
    "c32 k2 mel": BASE,
    "c16 k3 mel": dataclasses.replace(BASE, residual_channels=16, kernel_size=3),
    "c20 k3 mel": dataclasses.replace(BASE, residual_channels=20, kernel_size=3),
    "c48 k2": dataclasses.replace(BASE, residual_channels=48, mel_channels=0),
    "c32 k2 lpc": dataclasses.replace(BASE, excitation="lpc", lpc_order=4),
}


def outputs(name: str, path: Path, precision: str, steps: int) -> dict[str, np.ndarray]:
    """Everything a revision's kernel computes on the checkpoint at `path`."""
    load = importlib.import_module(f"{name}.model.checkpoint").load_checkpoint
    backend_cls = importlib.import_module(f"{name}.generation.cpu.backend").CpuBackend
    frames = importlib.import_module(f"{name}.generation.mel_frames").MelFrames
    model = load(path).eval()
    config, rng = model.config, np.random.default_rng(1)
    out = {}
    runs = [("group", 16, 2, "never"), ("split", 1, 2, "always")]
    for label, n, threads, split in runs:
        backend = backend_cls(model, threads=threads, precision=precision, split=split)
        state = backend.new_state(n)
        for slot in range(n):
            backend.open_slot(state, slot, seed=slot)
        hop = config.mel.hop_length
        mels = [rng.standard_normal((steps // hop + 2, config.mel_channels)).astype(np.float32)
                for _ in range(n)]
        rows = timing_rows(config, n, steps)
        done = 0
        for k in (steps // 3, steps - steps // 3):      # two calls: chunks meet mid-frame
            part = frames.windows(mels, hop, [done] * n, k) if config.mel_channels else None
            out[f"{label} codes {done}"] = backend.generate(state, list(range(n)), k, part,
                                                            **_cut(rows, done, k))
            done += k
        out[f"{label} ring"] = state.ring.numpy().copy()
        if "lpc" not in rows and path.name != "vocoder.safetensors":   # teacher-forced
            state = backend.new_state(n)
            for slot in range(n):
                backend.open_slot(state, slot)
            codes = rng.integers(0, config.classes, (n, steps))
            mel = (None if not config.mel_channels else
                   rng.standard_normal((n, steps, config.mel_channels)).astype(np.float32))
            out[f"{label} logits"] = backend.teacher_force(state, list(range(n)), codes, mel)
    return out


def _cut(rows: dict, start: int, k: int) -> dict:
    return {key: v[:, start:start + k] for key, v in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS))
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    base = Path(tempfile.gettempdir()) / "kernel_ab"
    sys.path.insert(0, str(base))
    names = [materialize(rev, None, base) for rev in (args.before, args.after)]
    tmp = Path(tempfile.mkdtemp())
    models = {"vocoder": ROOT / "models" / "vocoder.safetensors"}
    for label, config in RANDOM.items():
        models[label] = tmp / f"{label.replace(' ', '_')}.safetensors"
        save_checkpoint(models[label], random_model(config, seed=len(models)))
    differ = 0
    for label, path in models.items():
        for precision in args.precisions:
            a, b = (outputs(name, path, precision, args.steps) for name in names)
            bad = [key for key in a if not np.array_equal(a[key], b[key])]
            differ += bool(bad)
            print(f"{label:12} {precision:6} {'SAME' if not bad else 'DIFFER: ' + ', '.join(bad)}"
                  f"  ({len(a)} arrays)", flush=True)
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
