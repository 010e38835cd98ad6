"""Resume the bundled vocoder on the packed training subset for at most 8 minutes.

    scripts/gpu-train OUTDIR [--minutes 7] [--smoke]

Why: a GPU machine lent for a few minutes has torch and numpy and this tree, nothing else
(no network, no synthesizer, no FastAPI), so this runs from the committed pack
(`training/vocoder-subset.npz`, made by `wavenet corpus --pack`) and imports only
wavenet_core, with safetensors and tqdm from the wheels carried in scripts/wheels where
they are not installed (scripts/carried_wheels.py). OUTDIR gets `model.safetensors`
(+ optimizer, state.json, metrics.jsonl: `--resume` continues it) and `metrics.json`, the
run's summary. A second run into the same OUTDIR resumes it. `--smoke` is the test
suite's CPU check: two tiny steps.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from carried_wheels import use_carried_wheels  # noqa: E402

use_carried_wheels()

import torch  # noqa: E402

from wavenet_core.model.checkpoint import read_metadata  # noqa: E402
from wavenet_core.training.train import METRICS_FILE, MODEL_FILE, TrainSettings, train  # noqa: E402

PACK = ROOT / "training" / "vocoder-subset.npz"
BUNDLED = ROOT / "models" / "vocoder.safetensors"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("outdir")
    p.add_argument("--minutes", type=float, default=7.0, help="training-loop budget (<= 8)")
    p.add_argument("--pack", default=str(PACK))
    p.add_argument("--init-from", default=str(BUNDLED))
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--window", type=int, default=8000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--input-noise", type=float, default=None,
                   help="noise injection (mu-law steps); default: the --init-from run's")
    p.add_argument("--add-corpus", nargs="*", default=None,
                   help="more training packs; default: the --init-from run's, from training/")
    p.add_argument("--smoke", action="store_true", help="2 tiny steps on the CPU (tests)")
    args = p.parse_args(argv)
    if not 0 < args.minutes <= 8:
        raise SystemExit("--minutes must be in (0, 8]")
    out = Path(args.outdir)
    began = time.time()
    resume = (out / MODEL_FILE).exists()
    start = json.loads((out / "state.json").read_text())["step"] if resume else 0
    recipe = recipe_of(Path(args.init_from))
    settings = TrainSettings(
        corpus=args.pack, out_dir=str(out), steps=10**7, batch_size=args.batch_size,
        window=args.window, lr=args.lr, warmup=100, checkpoint_every=500, valid_every=500,
        valid_windows=64, max_minutes=args.minutes, device=args.device,
        init_from=args.init_from,
        input_noise=recipe["input_noise"] if args.input_noise is None else args.input_noise,
        input_noise_domain=recipe["input_noise_domain"],
        input_noise_law=recipe["input_noise_law"],
        add_corpus=recipe["add_corpus"] if args.add_corpus is None else tuple(args.add_corpus))
    if args.smoke:
        settings = dataclasses.replace(settings, steps=start + 2, batch_size=1, window=64,
                                       warmup=1, valid_windows=1, device="cpu", threads=1,
                                       max_minutes=0.0)
    path = train(_config_placeholder(), settings, resume=resume, progress=False)
    records = [json.loads(line) for line in (out / METRICS_FILE).read_text().splitlines()]
    run = [r for r in records if r["step"] > start]
    meta = read_metadata(path)
    summary = {
        "device": torch.cuda.get_device_name() if settings.device != "cpu"
        and torch.cuda.is_available() else "cpu",
        "torch": torch.__version__, "pack": args.pack, "init_from": args.init_from,
        "resumed_from_step": start, "steps_this_run": len(run),
        "step": int(meta["step"]), "total_steps": int(meta["total_steps"]),
        "train_seconds": run[-1]["elapsed_s"] if run else 0.0,
        "wall_seconds": time.time() - began,
        "samples_per_s": (sum(r["samples_per_s"] for r in run[-50:]) / len(run[-50:])
                          if run else 0.0),
        "last_loss_bits": run[-1]["loss"] / 0.6931471805599453 if run else None,
        "valid_bits": [{"step": r["step"], "bits": r["valid_bits"]} for r in records
                       if "valid_bits" in r],
        "settings": dataclasses.asdict(settings),
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: summary[k] for k in ("device", "steps_this_run", "total_steps",
                                              "train_seconds", "samples_per_s")}))
    return 0


def recipe_of(checkpoint: Path) -> dict:
    """The checkpoint's run's noise injection and added training packs (its `train_settings`
    metadata), the packs found by name in the tree's training/: resuming the bundled vocoder
    without them would train it on another recipe (the noise keeps its output from running
    away, docs/excitation.md)."""
    recorded = json.loads(read_metadata(checkpoint).get("train_settings", "{}"))
    added = []
    for name in recorded.get("add_corpus", ()):
        here = ROOT / "training" / Path(name).name
        if not here.exists():
            raise SystemExit(f"{checkpoint} trained with {name}, which is not in training/; "
                             "pass --add-corpus (nothing, or the packs to use)")
        added.append(str(here))
    return {"input_noise": float(recorded.get("input_noise", 0.0)),
            "input_noise_domain": recorded.get("input_noise_domain", "signal"),
            "input_noise_law": recorded.get("input_noise_law", "gaussian"),
            "add_corpus": tuple(added)}


def _config_placeholder():
    """train() takes its config from the --init-from / resumed checkpoint; this only says
    'no speaker input' (the universal vocoder)."""
    from wavenet_core.model.config import WaveNetConfig

    return WaveNetConfig(mel_channels=80, num_speakers=0)


if __name__ == "__main__":
    raise SystemExit(main())
