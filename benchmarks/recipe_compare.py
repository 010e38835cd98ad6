"""Recipe comparison (issue 17, item 2): arms from one start and budget, scored on unseen voices.

    .venv/bin/python benchmarks/recipe_compare.py --init training/universal-run/model.safetensors \\
        --corpus corpus17 --out runs/recipes --arms init control lr2e-4 batch16 preemph

Every arm fine-tunes the same starting checkpoint (`--init`) on the same corpus with the same
seed for the same number of training samples, `--samples` = steps x batch x window (wall
time is no budget on a shared machine where processes get paused). Schedule: linear warm-up
over the first sixth of the steps, cosine decay to `min_lr` at the end
(wavenet_core.training.train).
Each arm is then scored on the corpus's `test` split, whole voices that never trained:
- teacher-forced NLL (bits/sample) over `--test-windows` evenly spaced ones of the
  non-overlapping 4,000-sample windows of the `test` utterances (an arm that changes the
  coded signal, pre-emphasis, predicts other codes: its NLL is not comparable and the
  audio metrics decide);
- the quality report's metrics (quality_metrics.py) on `--utterances` utterances chosen as
  quality.py does, each cut to `--seconds-limit`, resynthesized from their own log-mel
  (temperature 1, seed 0), plus Griffin-Lim from the same mels for reference.
Arms run one after another in this one process (one training process besides any other);
an arm whose folder holds a `score.json` is not redone. The `init` arm scores the start
itself. Results: OUT/ARM/score.json, and OUT/table.md, which also gives each arm's paired
difference from the control per utterance (mean ± standard error, and on how many
utterances the arm scored higher).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import Generator, choose_utterances  # noqa: E402
from quality_metrics import all_metrics  # noqa: E402

import wavenet_core.training.train  # noqa: E402
from wavenet_core.audio.griffin_lim import griffin_lim  # noqa: E402
from wavenet_core.audio.mel import log_mel  # noqa: E402
from wavenet_core.audio.wav import read_wav  # noqa: E402
from wavenet_core.model.checkpoint import load_checkpoint, read_metadata, save_checkpoint  # noqa: E402
from wavenet_core.model.transfer import with_cond_net  # noqa: E402
from wavenet_core.model.wavenet import WaveNet  # noqa: E402
from wavenet_core.training.corpus import load_manifest  # noqa: E402
from wavenet_core.training.data import Batch, fixed_batches  # noqa: E402
from wavenet_core.training.train import TrainSettings, train, validation_bits  # noqa: E402

_read = wavenet_core.training.train.load_utterances


@functools.cache
def _shared_read(corpus, split, config, pad):
    return _read(corpus, split, config, pad)


def shared_read(corpus, split, config, pad, limit=None, progress=None):
    """The arms read the corpus once (per split and pre-emphasis): `train` reads through
    this. Only the coded signal (pre-emphasis) and the mel settings change what is read."""
    key = dataclasses.replace(config, mel_mean=0.0, mel_std=1.0)
    return _shared_read(str(corpus), split, key, pad)[:limit]


wavenet_core.training.train.load_utterances = shared_read

CONTROL = {"batch_size": 4, "window": 4000, "lr": 5e-4, "min_lr": 5e-5, "seed": 0}
"""The universal run's recipe (training/README.md)."""
ARMS = {
    "control": {},
    "control-seed1": {"seed": 1},            # the control again on other windows: noise
    "lr2e-4": {"lr": 2e-4},                  # a gentler restart of the schedule
    "lr-flat": {"lr": 5e-5},                 # no restart: stay at the annealed rate
    "batch16": {"batch_size": 16, "lr": 1e-3},   # 4x batch, 1/4 the steps, lr x sqrt(4)
    "preemph": {"preemphasis": 0.85},        # LPCNet's pre-emphasis (audio/emphasis.py)
    "condnet": {"cond_layers": 2},           # conditioning network, 2 frames of lookahead
}
MODEL_OPTIONS = {"preemphasis": 0.0, "cond_layers": 0}
"""Arm keys that change the model's config, not the training settings (their defaults)."""
METRICS = ("mel_distance_db", "stoi", "pesq_wb", "dnsmos_ovrl", "dnsmos_p808")


def arm_start(init: Path, arm_dir: Path, options: dict, seed: int = 0) -> Path:
    """The starting checkpoint for an arm: `init` itself, or its weights under a config with
    the arm's model `options`: pre-emphasis (same tensors; only what the codes mean
    changes), a conditioning network (`init`'s tensors plus a fresh network, drawn with
    `seed`, that is exactly the identity: wavenet_core/model/condnet.py)."""
    if options == MODEL_OPTIONS:
        return init
    model = load_checkpoint(init, "cpu")
    if options["cond_layers"]:
        model = with_cond_net(model, options["cond_layers"], seed=seed)
    changed = WaveNet(dataclasses.replace(model.config, preemphasis=options["preemphasis"]))
    changed.load_state_dict(model.state_dict())
    meta = read_metadata(init)
    path = arm_dir / "start.safetensors"
    save_checkpoint(path, changed, {k: meta[k] for k in ("step", "total_steps") if k in meta})
    return path


def train_arm(name: str, args, arm_dir: Path) -> tuple[Path, dict]:
    recipe = {**CONTROL, **ARMS[name]}
    options = {k: recipe.pop(k, v) for k, v in MODEL_OPTIONS.items()}
    steps = max(1, round(args.samples / (recipe["batch_size"] * recipe["window"])))
    start = arm_start(args.init, arm_dir, options, recipe["seed"])
    settings = TrainSettings(corpus=str(args.corpus), out_dir=str(arm_dir), steps=steps,
                             warmup=max(1, steps // 6), checkpoint_every=steps,
                             valid_every=steps, valid_windows=32, threads=args.threads,
                             init_from=str(start), **recipe)
    config = load_checkpoint(start, "cpu").config
    began = time.process_time()
    path = train(config, settings, progress=args.progress)
    rows = [json.loads(line) for line in open(arm_dir / "metrics.jsonl")]
    info = {"recipe": {**recipe, **options}, "steps": steps,
            "samples": steps * recipe["batch_size"] * recipe["window"],
            "valid_bits": rows[-1]["valid_bits"], "cpu_seconds": time.process_time() - began,
            "median_samples_per_s": statistics.median(r["samples_per_s"] for r in rows)}
    return path, info


def test_bits(model: WaveNet, corpus: Path, windows: int) -> float:
    """Teacher-forced NLL over `windows` of the non-overlapping 4,000-sample windows of the
    `test` utterances, evenly spaced (so every held-out voice is in)."""
    config = model.config
    utts = shared_read(corpus, "test", config, config.receptive_field)
    batches = fixed_batches(utts, config, 1, 4000)
    keep = np.unique(np.linspace(0, len(batches) - 1, min(windows, len(batches))).astype(int))
    chosen = [batches[i] for i in keep]
    merged = [Batch.concatenate(chosen[i:i + 8]) for i in range(0, len(chosen), 8)]
    return validation_bits(model, merged, torch.device("cpu"))


def audio_scores(model: WaveNet, items: list, args) -> dict:
    gen = Generator(model, "auto")
    rows = []
    for item in items:
        x, mel = item["audio"], item["mel"]
        y = gen(mel, 0, 1.0, 0)
        rows.append(all_metrics(x, y, model.config.sample_rate, model.config.mel, args.threads))
    return {m: float(np.nanmean([r[m] for r in rows])) for m in METRICS} | {"rows": rows}


def load_items(args, model: WaveNet) -> list:
    sr, cfg = model.config.sample_rate, model.config.mel
    limit = int(args.seconds_limit * sr)
    items = []
    for u in choose_utterances(load_manifest(args.corpus), args.utterances, "test"):
        x = read_wav(args.corpus / u["path"], sr)[0][:limit]
        items.append({"path": u["path"], "audio": x, "mel": log_mel(x, sr, cfg)})
    return items


def paired(arm: dict, control: dict, metric: str) -> str:
    """Mean per-utterance difference arm - control, its standard error, and how many
    utterances the arm scored higher on."""
    d = np.array([a[metric] - c[metric] for a, c in zip(arm["audio"]["rows"],
                                                         control["audio"]["rows"])])
    d = d[np.isfinite(d)]
    return f"{d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)):.3f} ({(d > 0).sum()}/{len(d)})"


def table(out: Path, arms: list[str]) -> str:
    scores = {name: json.loads((out / name / "score.json").read_text())
              for name in ["griffin-lim", "init", *ARMS] if (out / name / "score.json").exists()}
    lines = ["| arm | recipe | steps | samples | valid NLL | test NLL | log-mel dist (dB) | "
             "STOI | PESQ-WB | DNSMOS OVRL | P.808 | STOI - control | OVRL - control |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for name in [n for n in dict.fromkeys(["griffin-lim", "init", *arms]) if n in scores]:
        s, t = scores[name], scores[name].get("train", {})
        recipe = ", ".join(f"{k} {v:g}" for k, v in ARMS.get(name, {}).items()) or (
            "control recipe" if name == "control" else "-")
        vs = [paired(s, scores["control"], m) if "rows" in s["audio"] and name != "control"
              and "control" in scores else "-" for m in ("stoi", "dnsmos_ovrl")]
        lines.append("| " + " | ".join([
            name, recipe, str(t.get("steps", "-")), f"{t['samples']:,}" if t else "-",
            f"{t['valid_bits']:.4f}" if t else "-",
            f"{s['test_bits']:.4f}" if "test_bits" in s else "-",
            *(f"{s['audio'][m]:.3f}" for m in METRICS), *vs]) + " |")
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init", type=Path, required=True)
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("runs/recipes"))
    p.add_argument("--arms", nargs="+", default=["init", *ARMS],
                   choices=["init", *ARMS])
    p.add_argument("--samples", type=int, default=300 * 4 * 4000)
    p.add_argument("--utterances", type=int, default=15)
    p.add_argument("--seconds-limit", type=float, default=2.0)
    p.add_argument("--test-windows", type=int, default=160)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--progress", action="store_true", help="training progress bars")
    p.add_argument("--table-only", action="store_true", help="only print OUT/table.md")
    args = p.parse_args(argv)
    if args.table_only:
        print(table(args.out, args.arms))
        return 0
    torch.set_num_threads(args.threads)
    init_model = load_checkpoint(args.init, "cpu")
    items = load_items(args, init_model)
    gl_dir = args.out / "griffin-lim"
    if not (gl_dir / "score.json").exists():
        gl_dir.mkdir(parents=True, exist_ok=True)
        sr, cfg = init_model.config.sample_rate, init_model.config.mel
        rows = [all_metrics(i["audio"], griffin_lim(i["mel"], sr, cfg, 60, len(i["audio"])),
                            sr, cfg, args.threads) for i in items]
        audio = {m: float(np.nanmean([r[m] for r in rows])) for m in METRICS}
        (gl_dir / "score.json").write_text(json.dumps({"audio": audio}, indent=1))
    for name in args.arms:
        arm_dir = args.out / name
        if (arm_dir / "score.json").exists():
            continue
        arm_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        if name == "init":
            model, info = init_model, {}
        else:
            path, info = train_arm(name, args, arm_dir)
            model = load_checkpoint(path, "cpu")
        model.eval()
        score = {"train": info, "test_bits": test_bits(model, args.corpus, args.test_windows),
                 "audio": audio_scores(model, items, args),
                 "utterances": [i["path"] for i in items]}
        score["wall_s"] = time.perf_counter() - t0
        (arm_dir / "score.json").write_text(json.dumps(score, indent=1))
        print(f"{name}: test NLL {score['test_bits']:.4f}, " + ", ".join(
            f"{m} {score['audio'][m]:.3f}" for m in METRICS) + f" ({score['wall_s']:.0f} s)",
            flush=True)
    print(table(args.out, args.arms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
