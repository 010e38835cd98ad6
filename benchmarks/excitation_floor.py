"""The representation's floor: how far from the original an 8-bit model could at best be.

    PYTHONPATH=. .venv/bin/python benchmarks/excitation_floor.py --voices runs/heldout \\
        --checkpoint models/vocoder.safetensors

Why: the quality report measures the vocoders against the original (models/MODEL_CARD.md);
this says how much of that distance the 8-bit output alone would cost, with a perfect model.
Per held-out utterance (the first `--seconds-limit` seconds, as excitation_compare.py cuts
them), the log-mel distance and STOI (benchmarks/quality_metrics.py) of:
- mu-law: the original through 8-bit mu-law (what a plain model's codes can say);
- excitation: the excitation model's loop with the true excitation: the prediction p_t from
  the reconstruction's own history and the checkpoint's coefficient rows (from the mel, as
  generation makes them), plus the 8-bit mu-law code of the original's excitation
  x_t - p(x)_t, clipped, as generation clips.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_metrics import mel_distance_db, stoi_score  # noqa: E402

from wavenet_core.audio.lpc import lpc_window, prediction  # noqa: E402
from wavenet_core.audio.mel import log_mel  # noqa: E402
from wavenet_core.audio.mulaw import mulaw_decode, mulaw_encode  # noqa: E402
from wavenet_core.audio.wav import read_wav  # noqa: E402
from wavenet_core.bench.roofline import cpu_model  # noqa: E402
from wavenet_core.model.checkpoint import load_checkpoint  # noqa: E402


def quantized(x: np.ndarray, classes: int) -> np.ndarray:
    return mulaw_decode(mulaw_encode(np.clip(x, -1, 1), classes - 1), classes - 1).astype(
        np.float32)


def excitation_loop(x: np.ndarray, rows: np.ndarray, classes: int) -> np.ndarray:
    """The reconstruction from the original's quantized excitation, fed back through the
    synthesis filter from its own history (generation's loop, the excitation known)."""
    codes = quantized(x - prediction(x, rows), classes)
    order = rows.shape[1]
    history = np.zeros(order, np.float32)            # newest first
    y = np.empty_like(x)
    for t in range(len(x)):
        p = -float(np.dot(history, rows[t]))
        y[t] = min(1.0, max(-1.0, p + codes[t]))
        history[1:] = history[:-1]
        history[0] = y[t]
    return y


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voices", type=Path, required=True, help="heldout_voices.py's folder")
    ap.add_argument("--checkpoint", type=Path, required=True, help="an excitation model")
    ap.add_argument("--seconds-limit", type=float, default=2.0)
    args = ap.parse_args(argv)
    config = load_checkpoint(args.checkpoint, "cpu").config
    if not config.lpc_excitation:
        raise SystemExit(f"{args.checkpoint} is not an excitation model")
    sr = config.sample_rate
    items = json.loads((args.voices / "manifest.json").read_text())["utterances"]
    print(f"CPU: {cpu_model()}; {len(items)} utterances, LPC order {config.lpc_order}, "
          f"expansion {config.lpc_expansion}", flush=True)
    scores: dict[str, list] = {"mu-law": [], "excitation": []}
    for item in items:
        x = read_wav(args.voices / item["path"], sr)[0][:int(args.seconds_limit * sr)]
        x = x.astype(np.float32)
        rows = lpc_window(log_mel(x, sr, config.mel), config, 0, len(x))
        for name, y in (("mu-law", quantized(x, config.classes)),
                        ("excitation", excitation_loop(x, rows, config.classes))):
            scores[name].append((mel_distance_db(x, y, sr, config.mel), stoi_score(x, y, sr)))
        print(f"{item['name'][:22]:22} " + " | ".join(
            f"{n}: {s[-1][0]:5.2f} dB, STOI {s[-1][1]:.3f}" for n, s in scores.items()),
            flush=True)
    for name, s in scores.items():
        d, q = np.asarray(s).T
        print(f"{name:10} log-mel distance {d.mean():.2f} ± {d.std(ddof=1) / len(d) ** .5:.2f} "
              f"dB, STOI {q.mean():.3f} ± {q.std(ddof=1) / len(q) ** .5:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
