"""Quality report: vocoders against Griffin-Lim and an untrained model, on held-out speech.

    .venv/bin/python benchmarks/quality.py --vocoder models/vocoder.safetensors \\
        --corpus corpus --split test --utterances 12 --seconds-limit 3 \\
        --out report.json --markdown table.md

Utterances: N from the corpus's `--split`: 'test' (default) holds whole voices that never
reached training, reading sentences that never occur in training; 'valid' holds those
sentences read by the training voices. Chosen deterministically round-robin over the
voices (utterance i is voice i mod S, its (voice + i div S)-th file), each trimmed to its
first `--seconds-limit` seconds.

Per utterance, the original x is compared with resyntheses y made from x's own log-mel
(the model's mel config): (a) each `--vocoder` (repeatable; a speaker-conditioned one gets
the utterance's speaker id when it knows the voice, else speaker 0, as the server does
without a speaker id; `--temperature`, default 1.0, or `model`: each checkpoint's own
default sampling, voicing-shaped where it sets it, docs/voicing.md; seed 0), (b) Griffin-Lim
(`wavenet_core.audio.griffin_lim`, 60 iterations), (c) the first vocoder's config untrained
(``torch.manual_seed(0); WaveNet(config)``), (d) x through 8-bit mu-law and back (the
ceiling for any 8-bit model), and (e) x itself (DNSMOS of the original; the intrusive
metrics are trivially perfect there). Metrics: see quality_metrics.py (log-mel distance,
STOI, wideband PESQ, DNSMOS P.835 OVRL and P.808). Also held-out NLL (bits per sample,
teacher-forced as in training, `--nll-window` windows; 8 bits is a uniform guess) of each
vocoder and its untrained twin, on the same utterances untrimmed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_metrics import FLOOR_DB, align, all_metrics  # noqa: E402

from wavenet_core.audio.griffin_lim import griffin_lim  # noqa: E402
from wavenet_core.audio.mel import log_mel  # noqa: E402
from wavenet_core.audio.mulaw import mulaw_decode, mulaw_encode  # noqa: E402
from wavenet_core.audio.wav import read_wav, write_wav  # noqa: E402
from wavenet_core.generation.conditioning import local_from_mel
from wavenet_core.generation.registry import make_backend  # noqa: E402
from wavenet_core.generation.session import synthesize  # noqa: E402
from wavenet_core.model.checkpoint import load_checkpoint, read_metadata, speaker_names  # noqa: E402
from wavenet_core.model.wavenet import WaveNet  # noqa: E402
from wavenet_core.training.corpus import load_manifest  # noqa: E402
from wavenet_core.training.data import fixed_batches  # noqa: E402
from wavenet_core.training.train import validation_bits  # noqa: E402
from wavenet_core.training.utterance import make_utterance  # noqa: E402

METRICS = (("mel_distance_db", "log-mel dist (dB) ↓", "{:.2f}"), ("stoi", "STOI ↑", "{:.3f}"),
           ("pesq_wb", "PESQ-WB ↑", "{:.2f}"), ("dnsmos_ovrl", "DNSMOS OVRL ↑", "{:.2f}"),
           ("dnsmos_p808", "DNSMOS P.808 ↑", "{:.2f}"))
FIXED = {"griffin_lim": "Griffin-Lim (60 iterations)",
         "untrained": "WaveNet, same config, untrained",
         "mulaw": "original through 8-bit mu-law (ceiling)", "original": "original"}


def choose_utterances(manifest: dict, count: int, split: str = "test") -> list:
    """Round-robin over the split's voices, see the module docstring."""
    items = sorted((u for u in manifest["utterances"] if u["split"] == split),
                   key=lambda u: u["path"])
    groups: dict[str, list] = {}
    for u in items:
        groups.setdefault(u["speaker"], []).append(u)
    known = list(manifest["speakers"]) + list(manifest.get("held_out_speakers", []))
    order = [s for s in known if s in groups] + sorted(set(groups) - set(known))
    if not order:
        raise SystemExit(f"no utterances in split {split!r}")
    picked = []
    for i in range(min(count, len(items))):
        group = groups[order[i % len(order)]]
        picked.append(group[(i % len(order) + i // len(order)) % len(group)])
    return picked


def speaker_for(item: dict, names: list[str]) -> int:
    """The model's id for this voice, or 0 (the server's default) for a voice it lacks."""
    return names.index(item["speaker"]) if item["speaker"] in names else 0


def untrained_twin(model: WaveNet) -> WaveNet:
    torch.manual_seed(0)
    return WaveNet(model.config).eval()


class Generator:
    """Synthesis on the chosen backend; falls back to 'torch' if the compiled one fails."""

    def __init__(self, model: WaveNet, backend: str):
        self.model = model
        try:
            self.backend = make_backend(model, backend, "cpu")
        except Exception as exc:  # any failure: use the reference backend
            print(f"  backend {backend!r} unavailable ({exc}); using 'torch'", file=sys.stderr)
            self.backend = make_backend(model, "torch", "cpu")

    def __call__(self, mel: np.ndarray, speaker: int, temperature: float | None, seed: int):
        local = local_from_mel(mel, self.model.config, self.model.upsampler,
                               self.model.cond_net)
        kwargs = dict(seed=seed, temperature=temperature, speaker=speaker, local=local)
        if self.model.config.lpc_excitation or temperature is None:
            # predictions (and the voicing of shaped sampling) come from the mel itself
            kwargs = dict(kwargs, local=None, mel=mel)
        try:
            return synthesize(self.backend, len(local), **kwargs)
        except Exception as exc:
            if self.backend.name == "torch":
                raise
            print(f"  backend {self.backend.name!r} failed ({exc!r}); using 'torch'",
                  file=sys.stderr)
            self.backend = make_backend(self.model, "torch", "cpu")
            return synthesize(self.backend, len(local), **kwargs)


def held_out_bits(model: WaveNet, items: list, corpus: Path, names: list[str],
                  window: int, batch_size: int = 8) -> tuple[float, int]:
    """Teacher-forced NLL (bits/sample) and the number of predicted samples."""
    config = model.config
    utts = [make_utterance(read_wav(corpus / u["path"], config.sample_rate)[0],
                           speaker_for(u, names), config, config.receptive_field)
            for u in items]
    batches = fixed_batches(utts, config, batch_size, window)
    if not batches:
        raise SystemExit(f"no utterance is longer than --nll-window {window}")
    return validation_bits(model, batches, torch.device("cpu")), sum(b.targets.size
                                                                     for b in batches)


def summarize(rows: list[dict], systems: list[str]) -> dict:
    """Mean and sd over utterances (NaN PESQ values, where PESQ found no speech, skipped)."""
    out = {}
    for system in systems:
        for metric, _, _ in METRICS:
            values = np.array([r[system][metric] for r in rows], dtype=np.float64)
            values = values[np.isfinite(values)]
            out.setdefault(system, {})[metric] = {
                "mean": float(values.mean()) if len(values) else float("nan"),
                "sd": float(values.std()) if len(values) else float("nan"), "n": len(values)}
    return out


def markdown(report: dict) -> str:
    s, a = report["summary"], report["settings"]
    temperature = ("each model's default" if a["temperature"] is None
                   else format(a["temperature"], "g"))
    lines = [f"Held-out quality: {len(report['utterances'])} utterances from split "
             f"'{a['split']}' ({report['voices']} voices), {report['total_audio_seconds']:.1f}"
             f" s of audio (each at most {a['seconds_limit']:g} s); temperature "
             f"{temperature}, seed {a['seed']}, backend {report['backend']}. "
             "Mean ± sd over utterances.", "",
             "| system | " + " | ".join(h for _, h, _ in METRICS) + " |",
             "| --- |" + " ---: |" * len(METRICS)]
    for system, label in report["labels"].items():
        cells = [f"{fmt.format(s[system][m]['mean'])} ± {fmt.format(s[system][m]['sd'])}"
                 for m, _, fmt in METRICS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| model (step) | held-out NLL, trained (bits/sample) ↓ | untrained |",
              "| --- | ---: | ---: |"]
    for name, n in report["nll"].items():
        lines.append(f"| {name} ({n['step']}) | {n['trained_bits']:.3f} "
                     f"| {n['untrained_bits']:.3f} |")
    return "\n".join(lines) + "\n"


def label_of(path: str, model: WaveNet) -> str:
    meta = read_metadata(path)
    step = meta.get("total_steps", meta.get("step", "?"))
    kind = "speaker-conditioned" if model.config.global_conditioning else "universal"
    return f"WaveNet `{Path(path).name}` ({kind}, step {step})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocoder", required=True, action="append",
                   help="mel-conditioned checkpoint (repeat to compare several)")
    p.add_argument("--corpus", default="corpus")
    p.add_argument("--split", default="test", choices=("test", "valid"))
    p.add_argument("--utterances", type=int, default=12)
    p.add_argument("--seconds-limit", type=float, default=3.0)
    p.add_argument("--temperature", type=lambda v: None if v == "model" else float(v),
                   default=1.0, help="a number, or `model`: each checkpoint's default "
                                     "sampling (voicing-shaped where it sets it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gl-iterations", type=int, default=60)
    p.add_argument("--nll-window", type=int, default=4000)
    p.add_argument("--backend", default="auto", choices=("auto", "cpu", "torch"))
    p.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    p.add_argument("--out", default="quality.json")
    p.add_argument("--markdown", default=None)
    p.add_argument("--wav-dir", default=None, help="also write every signal as WAV here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    corpus = Path(args.corpus)
    models = {f"vocoder{i}": (path, load_checkpoint(path)) for i, path in enumerate(args.vocoder)}
    first = next(iter(models.values()))[1]
    if not all(m.config.local_conditioning for _, m in models.values()):
        raise SystemExit("every --vocoder must be mel conditioned")
    names = {key: speaker_names(path) or [] for key, (path, _) in models.items()}
    labels = {key: label_of(path, m) for key, (path, m) in models.items()}
    labels.update(FIXED)
    gens = {key: Generator(m, args.backend) for key, (_, m) in models.items()}
    gens["untrained"] = Generator(untrained_twin(first), args.backend)
    items = choose_utterances(load_manifest(corpus), args.utterances, args.split)
    sr, mel_cfg = first.config.sample_rate, first.config.mel
    limit = int(args.seconds_limit * sr)
    timing = dict.fromkeys(("generation", "griffin_lim", "metrics", "nll"), 0.0)
    if args.wav_dir:
        os.makedirs(args.wav_dir, exist_ok=True)
    rows = []
    for i, item in enumerate(items):
        x = read_wav(corpus / item["path"], sr)[0][:limit]
        mel = log_mel(x, sr, mel_cfg)
        t0 = time.perf_counter()
        signals = {key: gen(mel, speaker_for(item, names.get(key, [])), args.temperature,
                            args.seed) for key, gen in gens.items()}
        timing["generation"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        signals["griffin_lim"] = griffin_lim(mel, sr, mel_cfg, args.gl_iterations, len(x))
        timing["griffin_lim"] += time.perf_counter() - t0
        signals["mulaw"] = mulaw_decode(mulaw_encode(x))
        signals["original"] = x
        t0 = time.perf_counter()
        row = {"path": item["path"], "speaker": item["speaker"], "seconds": len(x) / sr}
        for key, y in signals.items():
            row[key] = all_metrics(x, y, sr, mel_cfg, args.threads)
        timing["metrics"] += time.perf_counter() - t0
        rows.append(row)
        if args.wav_dir:
            for key, y in signals.items():
                write_wav(Path(args.wav_dir) / f"{Path(item['path']).stem}_{key}.wav",
                          align(x, y)[1], sr)
        print(f"{i + 1:>3} {Path(item['path']).stem[:26]:26} {row['seconds']:5.2f}s | " +
              " | ".join(f"{k[:8]} {row[k]['stoi']:.3f} {row[k]['dnsmos_ovrl']:.2f}"
                         for k in signals if k != "original"), flush=True)
    t0 = time.perf_counter()
    nll, untrained_by_config = {}, {}
    for key, (path, model) in models.items():
        trained, count = held_out_bits(model, items, corpus, names[key], args.nll_window)
        shape = model.config.to_json()  # twins of one config are identical: score once
        if shape not in untrained_by_config:
            untrained_by_config[shape] = held_out_bits(untrained_twin(model), items, corpus,
                                                       names[key], args.nll_window)[0]
        untrained = untrained_by_config[shape]
        nll[Path(path).name] = {"checkpoint": str(path), "trained_bits": trained,
                                "step": read_metadata(path).get("total_steps",
                                                                read_metadata(path).get("step")),
                                "untrained_bits": untrained, "predicted_samples": count}
    timing["nll"] = time.perf_counter() - t0
    timing["total"] = time.perf_counter() - began
    report = {"settings": vars(args), "backend": gens["vocoder0"].backend.name,
              "labels": labels, "config": first.config.to_dict(), "floor_db": FLOOR_DB,
              "voices": len({r["speaker"] for r in rows}),
              "total_audio_seconds": sum(r["seconds"] for r in rows),
              "summary": summarize(rows, list(labels)), "nll": nll, "utterances": rows,
              "timing_s": timing}
    Path(args.out).write_text(json.dumps(report, indent=1))
    table = markdown(report)
    if args.markdown:
        Path(args.markdown).write_text(table)
    print("\n" + table)
    print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timing.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
