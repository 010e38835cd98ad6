"""The excitation's long-term spectrum: the original's against what each excitation model makes.

    PYTHONPATH=. .venv/bin/python benchmarks/excitation_spectrum.py --voices runs/heldout \\
        --arm natural=models/vocoder.safetensors --arm plain10k=runs/compare/x.safetensors

Why: the vocoders' log-mel distance is largest in the top bands, where they are too loud
(models/MODEL_CARD.md). The synthesis filter is the same for the original and the
resynthesis (the coefficient rows come from the mel), so the difference is in the
excitation the model samples. Per arm, each held-out utterance (first `--seconds-limit`
seconds) is resynthesized from its log-mel as the quality report does (temperature 1, seed
0, the compiled CPU backend) and both excitations, x - p(x) under the same rows, are
measured: power in 1 kHz bands from 512-sample Hann frames, averaged over frames and
utterances, in dB relative to the original excitation's lowest band.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import Generator  # noqa: E402

from wavenet_core.audio.lpc import lpc_window, prediction  # noqa: E402
from wavenet_core.audio.mel import log_mel  # noqa: E402
from wavenet_core.audio.wav import read_wav  # noqa: E402
from wavenet_core.bench.roofline import cpu_model  # noqa: E402
from wavenet_core.model.checkpoint import load_checkpoint  # noqa: E402

FRAME = 512


def band_power(signal: np.ndarray, sample_rate: int, band_hz: float = 1000.0) -> np.ndarray:
    """Mean power per band of `band_hz` from 0 to Nyquist (Hann frames of FRAME samples)."""
    n = len(signal) // FRAME * FRAME
    if n == 0:
        raise ValueError(f"a signal of {len(signal)} samples is shorter than one frame")
    frames = signal[:n].reshape(-1, FRAME) * np.hanning(FRAME)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(0)[:FRAME // 2]
    per_band = round(band_hz * FRAME / sample_rate)
    return power[:len(power) // per_band * per_band].reshape(-1, per_band).mean(1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voices", type=Path, required=True, help="heldout_voices.py's folder")
    ap.add_argument("--arm", action="append", required=True, help="NAME=CHECKPOINT")
    ap.add_argument("--seconds-limit", type=float, default=2.0)
    args = ap.parse_args(argv)
    items = json.loads((args.voices / "manifest.json").read_text())["utterances"]
    print(f"CPU: {cpu_model()}; {len(items)} utterances; dB per 1 kHz band, relative to the "
          "original excitation's 0-1 kHz band", flush=True)
    reference = None
    for arm in args.arm:
        name, path = arm.split("=", 1)
        model = load_checkpoint(path, "cpu").eval()
        cfg = model.config
        if not cfg.lpc_excitation:
            raise SystemExit(f"{path} is not an excitation model")
        generate, sr = Generator(model, "auto"), cfg.sample_rate
        true_p, made_p = [], []
        for item in items:
            x = read_wav(args.voices / item["path"], sr)[0][:int(args.seconds_limit * sr)]
            x = x.astype(np.float32)
            mel = log_mel(x, sr, cfg.mel)
            y = generate(mel, 0, 1.0, 0)[:len(x)]
            rows = lpc_window(mel, cfg, 0, len(x))
            true_p.append(band_power(x - prediction(x, rows), sr))
            made_p.append(band_power(y - prediction(y, rows[:len(y)]), sr))
        true_db = 10 * np.log10(np.mean(true_p, 0))
        made_db = 10 * np.log10(np.mean(made_p, 0))
        if reference is None:
            reference = true_db[0]
            print(f"{'original':>24}: " + " ".join(f"{v - reference:+5.1f}" for v in true_db))
        print(f"{name[:24]:>24}: " + " ".join(f"{v - reference:+5.1f}" for v in made_db)
              + "   (minus original: " + " ".join(f"{v:+.1f}" for v in made_db - true_db)
              + ")", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
