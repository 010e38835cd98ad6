"""Quality report: the vocoder against Griffin-Lim and an untrained model, on held-out speech.

    .venv/bin/python benchmarks/quality.py --vocoder models/vocoder.safetensors \\
        --babble models/babble.safetensors --corpus corpus --utterances 24 \\
        --seconds-limit 3 --out report.json --markdown table.md

Utterances: N from the corpus's held-out split ('valid': sentences never seen in
training), chosen deterministically round-robin over the speakers (utterance i is speaker
i mod S, the (speaker + i div S)-th valid sentence of that speaker), each trimmed to its
first `--seconds-limit` seconds.

Per utterance, the original x is compared with resyntheses y made from x's own log-mel
(the model's mel config): (a) the trained vocoder (speaker = the utterance's speaker,
`--temperature`, default 1.0, seed 0: on probes lower temperatures did not help these
models; they trade sampling noise for stuck-in-silence failures), (b) Griffin-Lim
(`wavenet_core.griffin_lim`, 60 iterations), (c) the same config untrained
(``torch.manual_seed(0); WaveNet(config)``), plus (d) x through 8-bit mu-law and back,
the ceiling for any 8-bit model. y is trimmed to len(x) (never shorter here).

Metrics:
- log-mel distance (dB, lower is better). With M = exp(log_mel(.)) the mel magnitudes
  [frames, n_mels] (power-1 Slaney mel, same config as the model), the floor
  f = max(M_x) * 10^(-80/20) (80 dB below the reference's loudest mel bin) and
  D = 20 * log10(max(M, f)) (= 10 log10 of mel power),
      distance = mean over frames t of sqrt( mean over bands b of (D_x[t,b] - D_y[t,b])^2 ).
- STOI (0..1, higher is better): pystoi.stoi(x, y, sample_rate), classic (not extended).
- Held-out NLL (bits per sample, lower is better), teacher-forced as in training
  (`fixed_batches` windows of `--nll-window` predictions, `validation_bits`), on the same
  utterances untrimmed, for the vocoder and babble checkpoints and their untrained twins.
  8 bits/sample is a uniform guess over the 256 mu-law classes.
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

from wavenet_core.audio import read_wav, write_wav
from wavenet_core.checkpoint import load_checkpoint, read_metadata, speaker_names
from wavenet_core.config import MelConfig
from wavenet_core.corpus import load_manifest
from wavenet_core.data import fixed_batches, make_utterance
from wavenet_core.generation.backends import make_backend
from wavenet_core.griffin_lim import griffin_lim
from wavenet_core.mel import log_mel
from wavenet_core.model import WaveNet
from wavenet_core.mulaw import mulaw_decode, mulaw_encode
from wavenet_core.synthesis import local_from_mel, synthesize
from wavenet_core.train import validation_bits

FLOOR_DB = 80.0
SYSTEMS = ("vocoder", "griffin_lim", "untrained", "mulaw")
LABELS = {"vocoder": "WaveNet vocoder (trained)", "griffin_lim": "Griffin-Lim (60 iterations)",
          "untrained": "WaveNet, same config, untrained",
          "mulaw": "original through 8-bit mu-law (ceiling)"}


def align(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trim both to the shorter length."""
    n = min(len(x), len(y))
    return np.asarray(x[:n], dtype=np.float32), np.asarray(y[:n], dtype=np.float32)


def mel_distance_db(reference: np.ndarray, test: np.ndarray, sample_rate: int,
                    mel_cfg: MelConfig, floor_db: float = FLOOR_DB) -> float:
    """Log-mel spectral distance in dB (module docstring formula); lengths are aligned."""
    x, y = align(reference, test)
    mx = np.exp(log_mel(x, sample_rate, mel_cfg).astype(np.float64))
    my = np.exp(log_mel(y, sample_rate, mel_cfg).astype(np.float64))
    floor = mx.max() * 10.0 ** (-floor_db / 20.0)
    dx = 20.0 * np.log10(np.maximum(mx, floor))
    dy = 20.0 * np.log10(np.maximum(my, floor))
    return float(np.mean(np.sqrt(np.mean((dx - dy) ** 2, axis=1))))


def stoi_score(reference: np.ndarray, test: np.ndarray, sample_rate: int) -> float:
    """Classic STOI (pystoi) after aligning lengths."""
    from pystoi import stoi

    x, y = align(reference, test)
    return float(stoi(x.astype(np.float64), y.astype(np.float64), sample_rate, extended=False))


def choose_utterances(manifest: dict, count: int, speakers: list[str] | None = None) -> list:
    """Round-robin over speakers (those the model knows, if it names them), see docstring."""
    valid = sorted((u for u in manifest["utterances"] if u["split"] == "valid"),
                   key=lambda u: u["path"])
    groups: dict[str, list] = {}
    for u in valid:
        if not speakers or u["speaker"] in speakers:
            groups.setdefault(u["speaker"], []).append(u)
    order = [s for s in manifest["speakers"] if s in groups]
    if not order:
        raise SystemExit("no held-out utterances for this model's speakers")
    picked = []
    for i in range(min(count, sum(len(g) for g in groups.values()))):
        group = groups[order[i % len(order)]]
        picked.append(group[(i % len(order) + i // len(order)) % len(group)])
    return picked


def speaker_of(item: dict, names: list[str]) -> int:
    return names.index(item["speaker"]) if names else int(item["speaker_id"])


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

    def __call__(self, mel: np.ndarray, speaker: int, temperature: float, seed: int):
        local = local_from_mel(mel, self.model.config)
        kwargs = dict(seed=seed, temperature=temperature, speaker=speaker, local=local)
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
                           speaker_of(u, names) if config.global_conditioning else 0,
                           config, config.receptive_field) for u in items]
    batches = fixed_batches(utts, config, batch_size, window)
    if not batches:
        raise SystemExit(f"no utterance is longer than --nll-window {window}")
    bits = validation_bits(model, batches, torch.device("cpu"))
    return bits, sum(b.targets.size for b in batches)


def summarize(rows: list[dict]) -> dict:
    out = {}
    for system in SYSTEMS:
        for metric in ("mel_distance_db", "stoi"):
            values = np.array([r[system][metric] for r in rows])
            out.setdefault(system, {})[metric] = {"mean": float(values.mean()),
                                                  "sd": float(values.std())}
    return out


def markdown(report: dict) -> str:
    s, a = report["summary"], report["settings"]
    lines = [f"Held-out quality: {a['utterances']} utterances from the 'valid' split, "
             f"{report['total_audio_seconds']:.1f} s of audio (each at most "
             f"{a['seconds_limit']:g} s); vocoder at step {report['vocoder_step']}, "
             f"temperature {a['temperature']:g}, seed {a['seed']}, backend "
             f"{report['backend']}. Mean ± sd over utterances.", "",
             "| system | log-mel distance (dB) ↓ | STOI ↑ |", "| --- | ---: | ---: |"]
    for system in SYSTEMS:
        d, t = s[system]["mel_distance_db"], s[system]["stoi"]
        lines.append(f"| {LABELS[system]} | {d['mean']:.2f} ± {d['sd']:.2f} "
                     f"| {t['mean']:.3f} ± {t['sd']:.3f} |")
    lines += ["", "| model (step) | held-out NLL, trained (bits/sample) ↓ | untrained |",
              "| --- | ---: | ---: |"]
    for name, n in report["nll"].items():
        lines.append(f"| {name} ({n['step']}) | {n['trained_bits']:.3f} "
                     f"| {n['untrained_bits']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocoder", required=True, help="mel-conditioned checkpoint")
    p.add_argument("--babble", help="unconditioned (speaker-only) checkpoint, NLL only")
    p.add_argument("--corpus", default="corpus")
    p.add_argument("--utterances", type=int, default=12)
    p.add_argument("--seconds-limit", type=float, default=3.0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gl-iterations", type=int, default=60)
    p.add_argument("--nll-window", type=int, default=4000)
    p.add_argument("--backend", default="auto", choices=("auto", "cpu", "torch"))
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--out", default="quality.json")
    p.add_argument("--markdown", default=None)
    p.add_argument("--wav-dir", default=None, help="also write every signal as WAV here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    timing = dict.fromkeys(("vocoder", "untrained", "griffin_lim", "metrics", "nll"), 0.0)
    corpus = Path(args.corpus)
    vocoder = load_checkpoint(args.vocoder)
    config = vocoder.config
    if not config.local_conditioning:
        raise SystemExit(f"{args.vocoder} is not mel conditioned")
    names = speaker_names(args.vocoder) or []
    items = choose_utterances(load_manifest(corpus), args.utterances, names)
    gens = {"vocoder": Generator(vocoder, args.backend),
            "untrained": Generator(untrained_twin(vocoder), args.backend)}
    sr, limit = config.sample_rate, int(args.seconds_limit * config.sample_rate)
    if args.wav_dir:
        os.makedirs(args.wav_dir, exist_ok=True)
    print(f"{'#':>3} {'utterance':28} {'spk':>3} {'sec':>5} | " + " | ".join(
        f"{s[:9]:>9} dB  STOI" for s in SYSTEMS) + " | gen s", flush=True)
    rows = []
    for i, item in enumerate(items):
        x = read_wav(corpus / item["path"], sr)[0][:limit]
        mel = log_mel(x, sr, config.mel)
        speaker = speaker_of(item, names)
        signals, t_gen = {}, 0.0
        for system in ("vocoder", "untrained"):
            t0 = time.perf_counter()
            signals[system] = gens[system](mel, speaker, args.temperature, args.seed)
            timing[system] += time.perf_counter() - t0
            t_gen += time.perf_counter() - t0
        t0 = time.perf_counter()
        signals["griffin_lim"] = griffin_lim(mel, sr, config.mel, args.gl_iterations, len(x))
        timing["griffin_lim"] += time.perf_counter() - t0
        signals["mulaw"] = mulaw_decode(mulaw_encode(x))
        t0 = time.perf_counter()
        row = {"path": item["path"], "speaker": item["speaker"], "seconds": len(x) / sr}
        for system in SYSTEMS:
            row[system] = {"mel_distance_db": mel_distance_db(x, signals[system], sr, config.mel),
                           "stoi": stoi_score(x, signals[system], sr)}
        timing["metrics"] += time.perf_counter() - t0
        rows.append(row)
        if args.wav_dir:
            stem = Path(item["path"]).stem
            write_wav(Path(args.wav_dir) / f"{stem}_original.wav", x, sr)
            for system, y in signals.items():
                write_wav(Path(args.wav_dir) / f"{stem}_{system}.wav", align(x, y)[1], sr)
        print(f"{i + 1:>3} {Path(item['path']).stem[:28]:28} {speaker:>3} {row['seconds']:5.2f} | "
              + " | ".join(f"{row[s]['mel_distance_db']:6.2f}   {row[s]['stoi']:5.3f}"
                           for s in SYSTEMS) + f" | {t_gen:5.1f}", flush=True)

    t0 = time.perf_counter()
    nll = {}
    for name, path in (("vocoder", args.vocoder), ("babble", args.babble)):
        if not path:
            continue
        model = vocoder if name == "vocoder" else load_checkpoint(path)
        model_names = speaker_names(path) or []
        model_items = items if name == "vocoder" else choose_utterances(
            load_manifest(corpus), args.utterances, model_names)
        trained, count = held_out_bits(model, model_items, corpus, model_names, args.nll_window)
        untrained, _ = held_out_bits(untrained_twin(model), model_items, corpus, model_names,
                                     args.nll_window)
        nll[name] = {"checkpoint": str(path), "step": read_metadata(path).get("step", "?"),
                     "trained_bits": trained, "untrained_bits": untrained,
                     "predicted_samples": count}
        print(f"NLL {name:8} trained {trained:.3f}  untrained {untrained:.3f} bits/sample "
              f"({count} samples)", flush=True)
    timing["nll"] = time.perf_counter() - t0
    timing["total"] = time.perf_counter() - began
    report = {"settings": vars(args), "backend": gens["vocoder"].backend.name,
              "vocoder_step": read_metadata(args.vocoder).get("step", "?"),
              "config": config.to_dict(), "floor_db": FLOOR_DB,
              "total_audio_seconds": sum(r["seconds"] for r in rows),
              "summary": summarize(rows), "nll": nll, "utterances": rows,
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
