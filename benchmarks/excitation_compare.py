"""Issue 26, item 4: vocoder arms on held-out voices, paired by utterance, with standard errors.

    PYTHONPATH=. .venv/bin/python benchmarks/excitation_compare.py \\
        --voices runs/heldout --arm excitation=runs/compare/excitation-2000.safetensors \\
        --arm plain=runs/compare/plain-2000.safetensors --sampling unshaped \\
        --out report.json --markdown table.md

Why: the excitation model (docs/excitation.md) and the plain model trained from scratch on
the same recipe are compared at the same step, so at the same number of training samples.
Utterances: the folder `benchmarks/heldout_voices.py` renders (voices no model trained on),
each cut to its first `--seconds-limit` seconds. Every arm (checkpoint x `--sampling` mode;
temperature 1, seed 0, the CPU backend) resynthesizes each utterance from the original's
log-mel, Griffin-Lim (60 iterations) from the same mel beside them, and the original itself
(its DNSMOS). Metrics: quality_metrics.py. Each figure is a mean over utterances ± its
standard error (sd / sqrt(n)); the paired table gives per-utterance differences of two
systems: mean ± standard error, and on how many utterances the first scored higher.
Scores are kept in VOICES/scores.json under what they depend on (the checkpoint's bytes,
sampling mode, seed, NLL window; the utterance and its cut): a checkpoint scored once is not
scored again when a later report pairs it with another.

Held-out NLL, teacher-forced on the whole utterances (non-overlapping `--nll-window`
windows, fp32). A plain model's classes are the mu-law codes of x, an excitation model's the
codes of e = x - p, so their own NLLs (`native`) are on different grids. Comparable: both
as densities over the sample x, each class's probability spread evenly over its mu-law bin
(the bin of x, or of e shifted by p), evaluated at the true x and discretised to 16-bit
levels (width 2/65536): bits = native bits + mean over samples of log2(bin width / 2^-15).
This is the NLL of the 16-bit sample under each model's distribution mapped to the sample
domain; it rewards the excitation model's finer bins near e = 0 exactly as much as they
let it place its probability more precisely.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import Generator  # noqa: E402
from quality_metrics import all_metrics  # noqa: E402

from wavenet_core.audio.griffin_lim import griffin_lim  # noqa: E402
from wavenet_core.audio.mel import log_mel  # noqa: E402
from wavenet_core.audio.mulaw import mulaw_thresholds  # noqa: E402
from wavenet_core.audio.wav import read_wav  # noqa: E402
from wavenet_core.bench.roofline import cpu_model  # noqa: E402
from wavenet_core.model.checkpoint import load_checkpoint, read_metadata  # noqa: E402
from wavenet_core.model.wavenet import WaveNet  # noqa: E402
from wavenet_core.training.data import fixed_batches  # noqa: E402
from wavenet_core.training.train import validation_bits  # noqa: E402
from wavenet_core.training.utterance import make_utterance  # noqa: E402

METRICS = (("mel_distance_db", "log-mel dist (dB) ↓", "{:.2f}"), ("stoi", "STOI ↑", "{:.3f}"),
           ("pesq_wb", "PESQ-WB ↑", "{:.2f}"), ("dnsmos_ovrl", "DNSMOS OVRL ↑", "{:.2f}"),
           ("dnsmos_p808", "DNSMOS P.808 ↑", "{:.2f}"))
NLL = (("nll_grid16", "NLL, 16-bit grid (bits) ↓", "{:.3f}"),
       ("nll_native", "NLL, own classes (bits)", "{:.3f}"),
       ("clipped", "samples at full scale (%)", "{:.2f}"))
SHAPED = {"voiced_temperature": 0.5, "voiced_floor": 0.002}
"""unshaped: every sample at temperature 1 (an explicit temperature: no shaping). shaped:
voicing-shaped sampling (issue 26 item 2, docs/voicing.md) at LPCNet's values for voiced
frames, written into the arm's config, and no temperature given (the model's default).
Tuned variants: `tX` samples every frame at temperature X (no shaping); `shaped-T-F` shapes
voiced frames with temperature T and floor F."""


def sampling_settings(mode: str) -> tuple[float | None, dict]:
    """(explicit temperature or None, config fields to write) for a --sampling mode."""
    try:
        if mode == "unshaped":
            return 1.0, {}
        if mode == "shaped":
            return None, SHAPED
        if mode.startswith("t"):
            return float(mode[1:]), {}
        if mode.startswith("shaped-"):
            t, f = mode.split("-")[1:]
            return None, {"voiced_temperature": float(t), "voiced_floor": float(f)}
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"unknown sampling mode {mode!r}: unshaped, shaped, "
                                     "tX (a temperature) or shaped-T-F")


def sampling_model(model: WaveNet, mode: str) -> tuple[WaveNet, float | None]:
    """(the model to sample, the temperature to ask for) for a sampling mode."""
    temperature, fields = sampling_settings(mode)
    if not fields:
        return model, temperature
    if not all(hasattr(model.config, k) for k in fields):
        raise SystemExit("voicing-shaped sampling (issue 26 item 2) is not in this tree; "
                         "run --sampling unshaped")
    shaped = WaveNet(dataclasses.replace(model.config, **fields))
    shaped.load_state_dict(model.state_dict())
    return shaped.eval(), temperature


def grid_offset(targets: np.ndarray, classes: int) -> float:
    """Mean log2(bin width / 2^-15) of the target classes' mu-law bins (module docstring)."""
    edges = np.concatenate([[-1.0], mulaw_thresholds(classes).astype(np.float64), [1.0]])
    return float(np.log2(np.diff(edges) / 2.0 ** -15)[targets].mean())


def held_out_nll(model, audio: np.ndarray, window: int) -> dict:
    """One utterance's teacher-forced NLL, own classes and on the 16-bit grid."""
    config = model.config
    utt = make_utterance(audio, 0, config, config.receptive_field)
    batches = fixed_batches([utt], config, 8, window)
    if not batches:
        return {"nll_native": float("nan"), "nll_grid16": float("nan"), "outside": 0}
    native = validation_bits(model, batches, torch.device("cpu"))
    targets = np.concatenate([b.targets.ravel() for b in batches])
    outside = 0
    if config.lpc_excitation:  # excitation beyond [-1, 1]: its bin is wider than counted
        x = np.concatenate([np.zeros(config.receptive_field, np.float32), audio])
        outside = int((np.abs(x - utt.prediction) >= 1.0).sum())
    return {"nll_native": native, "nll_grid16": native + grid_offset(targets, config.classes),
            "outside": outside, "predicted": int(targets.size)}


def score_id(system: str, arms: dict, args) -> str:
    """What a system's scores depend on: the checkpoint's bytes, sampling, seed and window."""
    if "/" not in system:
        return system
    name, mode = system.split("/")
    digest = hashlib.sha256(Path(arms[name]).read_bytes()).hexdigest()[:16]
    if mode == "shaped":
        mode += "".join(f"-{k}{v:g}" for k, v in SHAPED.items())
    return f"{digest}/{mode}/seed{args.seed}/nll{args.nll_window}"


def clipped(y: np.ndarray) -> float:
    """Percent of samples at full scale (|y| >= 0.99): an excitation model whose feedback
    through the synthesis filter runs away saturates there."""
    return 100.0 * float(np.mean(np.abs(y) >= 0.99))


def mean_se(values) -> tuple[float, float, int]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0, len(v)


def system_table(rows: list[dict], systems: list[str], labels: dict) -> list[str]:
    cols = METRICS + NLL
    lines = ["| system | " + " | ".join(h for _, h, _ in cols) + " |",
             "| --- |" + " ---: |" * len(cols)]
    for s in systems:
        cells = []
        for key, _, fmt in cols:
            m, se, n = mean_se([r[s].get(key, np.nan) for r in rows])
            cells.append("-" if n == 0 else f"{fmt.format(m)} ± {fmt.format(se)}")
        lines.append(f"| {labels[s]} | " + " | ".join(cells) + " |")
    return lines


def paired_table(rows: list[dict], pairs: list[tuple[str, str]], labels: dict) -> list[str]:
    cols = METRICS + NLL[:1]
    lines = ["| A - B | " + " | ".join(h for _, h, _ in cols) + " |",
             "| --- |" + " ---: |" * len(cols)]
    for a, b in pairs:
        cells = []
        for key, _, _ in cols:
            d = np.array([r[a].get(key, np.nan) - r[b].get(key, np.nan) for r in rows])
            m, se, n = mean_se(d)
            wins = int((d[np.isfinite(d)] > 0).sum())
            cells.append("-" if n == 0 else f"{m:+.3f} ± {se:.3f} ({wins}/{n})")
        lines.append(f"| {labels[a]} - {labels[b]} | " + " | ".join(cells) + " |")
    return lines


def markdown(report: dict) -> str:
    rows, labels, systems = report["utterances"], report["labels"], list(report["labels"])
    a = report["settings"]
    kinds = sorted({r["kind"] for r in rows})
    backends = ", ".join(sorted(set(report["backend"].values())))
    text = [f"CPU: {report['cpu']}. {len(rows)} held-out utterances ("
            + ", ".join(f"{sum(r['kind'] == k for r in rows)} {k}" for k in kinds)
            + f"), each at most {a['seconds_limit']:g} s, {report['audio_seconds']:.1f} s in "
            f"all; seed {a['seed']}, backend {backends}. Mean ± standard error over "
            "utterances; NLL on the whole utterances.", ""]
    text += system_table(rows, systems, labels)
    for kind in kinds if len(kinds) > 1 else []:
        text += ["", f"Only the {kind} voices:", ""]
        text += system_table([r for r in rows if r["kind"] == kind], systems, labels)
    pairs = [tuple(p) for p in report["pairs"]]
    text += ["", "Paired by utterance: mean of A - B ± standard error (utterances where A is "
             "higher / scored):", ""] + paired_table(rows, pairs, labels)
    for kind in kinds if len(kinds) > 1 else []:
        text += ["", f"Paired, only the {kind} voices:", ""]
        text += paired_table([r for r in rows if r["kind"] == kind], pairs, labels)
    return "\n".join(text) + "\n"


def default_pairs(arms: list[str], modes: list[str]) -> list[tuple[str, str]]:
    """Each later arm against the first per mode (arm 0 - arm i), shaped - unshaped per
    arm, and the first arm against Griffin-Lim."""
    pairs = [(f"{arms[0]}/{m}", f"{b}/{m}") for m in modes for b in arms[1:]]
    if len(modes) > 1:
        pairs += [(f"{a}/{modes[1]}", f"{a}/{modes[0]}") for a in arms]
    return pairs + [(f"{arms[0]}/{modes[0]}", "griffin_lim")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--voices", type=Path, required=True, help="heldout_voices.py's folder")
    p.add_argument("--arm", action="append", required=True, help="NAME=CHECKPOINT")
    p.add_argument("--sampling", nargs="+", default=["unshaped"],
                   help="unshaped, shaped, tX (temperature X) or shaped-T-F (voiced frames)")
    p.add_argument("--pair", nargs=2, action="append", metavar=("A", "B"),
                   help="systems to pair (e.g. excitation/unshaped plain/unshaped)")
    p.add_argument("--utterances", type=int, default=None, help="the first N of the folder")
    p.add_argument("--seconds-limit", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nll-window", type=int, default=4000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("excitation_compare.json"))
    p.add_argument("--markdown", type=Path, default=None)
    args = p.parse_args(argv)
    for mode in args.sampling:
        try:
            sampling_settings(mode)
        except argparse.ArgumentTypeError as exc:
            p.error(str(exc))
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    arms = dict(a.split("=", 1) for a in args.arm)
    models = {name: load_checkpoint(path, "cpu").eval() for name, path in arms.items()}
    configs = {(m.config.sample_rate, m.config.mel) for m in models.values()}
    if len(configs) != 1:
        raise SystemExit("every arm must share one sample rate and mel config")
    (sr, mel_cfg), = configs
    steps = {n: read_metadata(arms[n]).get("total_steps", read_metadata(arms[n]).get("step"))
             for n in arms}
    labels = {f"{n}/{m}": f"{n} (step {steps[n]}, {m})" for n in arms for m in args.sampling}
    labels |= {"griffin_lim": "Griffin-Lim (60 iterations)", "original": "original"}
    sampled = {f"{n}/{m}": sampling_model(model, m)
               for n, model in models.items() for m in args.sampling}
    gens = {s: (Generator(model, "auto"), t) for s, (model, t) in sampled.items()}
    manifest = json.loads((args.voices / "manifest.json").read_text())
    items = manifest["utterances"][:args.utterances]
    limit = int(args.seconds_limit * sr)
    cpu = cpu_model()
    print(f"CPU: {cpu}; {len(items)} utterances; arms: "
          + ", ".join(f"{n} step {steps[n]}" for n in arms), flush=True)
    systems = {s: score_id(s, arms, args) for s in labels}
    cache_path = args.voices / "scores.json"   # a checkpoint's scores never change: kept
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    rows = []
    for i, item in enumerate(items):
        t0 = time.perf_counter()
        done = cache.setdefault(f"{item['path']}@{limit}", {})
        todo = [s for s in labels if "clipped" not in done.get(systems[s], {})]
        if todo:
            full = read_wav(args.voices / item["path"], sr)[0]
            x = full[:limit]
            mel = log_mel(x, sr, mel_cfg)
            nll = {}
            for s in todo:
                n, _, m = s.partition("/")
                y = (x if s == "original" else griffin_lim(mel, sr, mel_cfg, 60, len(x))
                     if s == "griffin_lim" else gens[s][0](mel, 0, gens[s][1], args.seed))
                if systems[s] not in done:  # (else scored before the clipped share was kept)
                    done[systems[s]] = all_metrics(x, y, sr, mel_cfg, args.threads)
                    if m and n not in nll:
                        nll[n] = held_out_nll(models[n], full, args.nll_window)
                    done[systems[s]] |= nll.get(n, {}) if m else {}
                done[systems[s]]["clipped"] = clipped(y)
            cache_path.write_text(json.dumps(cache, indent=1))
        row = {"path": item["path"], "kind": item["kind"], "seconds": min(item["seconds"],
                                                                          limit / sr)}
        row |= {s: done[systems[s]] for s in labels}
        rows.append(row)
        print(f"{i + 1:>2}/{len(items)} {item['name'][:22]:22} {row['seconds']:.2f}s "
              f"{time.perf_counter() - t0:5.1f} s, {len(todo)} scored | " + " | ".join(
                  f"{s.split('/')[0][:10]} STOI {row[s]['stoi']:.3f} OVRL "
                  f"{row[s]['dnsmos_ovrl']:.2f}" for s in labels), flush=True)
    pairs = args.pair or default_pairs(list(arms), args.sampling)
    for a, b in pairs:
        if a not in labels or b not in labels:
            raise SystemExit(f"unknown system in --pair: {a} {b} (known: {', '.join(labels)})")
    report = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "cpu": cpu, "checkpoints": arms, "steps": steps, "labels": labels,
              "backend": {s: g.backend.name for s, (g, _) in gens.items()}, "pairs": pairs,
              "audio_seconds": sum(r["seconds"] for r in rows), "utterances": rows,
              "wall_s": time.perf_counter() - began}
    args.out.write_text(json.dumps(report, indent=1))
    table = markdown(report)
    if args.markdown:
        args.markdown.write_text(table)
    print("\n" + table + f"\n({report['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
