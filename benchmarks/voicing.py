"""How well voicing from the mel alone (wavenet_core/audio/voicing.py) agrees with a pitch
detector on the real waveform, on espeak-ng speech.

    .venv/bin/python benchmarks/voicing.py [--pyin] [--json]

Each espeak-ng voice of the served set (whose speech fitted the estimate's weights) and of
the held-out set (which did not) reads three sentences; per frame, the mel-only decision
is compared with `audio_voicing` (a normalised autocorrelation detector on the audio) and,
with --pyin, with librosa's probabilistic YIN as a second reference. Prints agreement,
Cohen's kappa and the voiced frames' recall and precision per group and per voice.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from wavenet_core.audio.mel import log_mel  # noqa: E402
from wavenet_core.audio.voicing import audio_voicing, mel_voicing  # noqa: E402
from wavenet_core.model.config import WaveNetConfig  # noqa: E402
from wavenet_core.text import speech  # noqa: E402
from wavenet_core.text.voices import HELD_OUT, SERVED_VOICES, VOICES  # noqa: E402

TEXTS = ("The quick brown fox jumps over the lazy dog near the river bank.",
         "She sells sea shells by the sea shore, and the shells she sells are surely "
         "seashells.",
         "Whisper softly: several thousand fish swam past the harbour this morning.")


def scores(estimate: np.ndarray, reference: np.ndarray) -> dict:
    """Agreement, Cohen's kappa, recall and precision of the voiced frames."""
    e, r = np.asarray(estimate, bool), np.asarray(reference, bool)
    agree = float(np.mean(e == r))
    chance = float(e.mean() * r.mean() + (1 - e.mean()) * (1 - r.mean()))
    both = float(np.sum(e & r))
    return {"frames": int(len(e)), "agreement": agree,
            "kappa": (agree - chance) / (1 - chance) if chance < 1 else 1.0,
            "recall": both / max(1, int(r.sum())), "precision": both / max(1, int(e.sum())),
            "voiced_share_reference": float(r.mean()), "voiced_share_estimate": float(e.mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pyin", action="store_true", help="also against librosa.pyin")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    config = WaveNetConfig(mel_channels=80)
    hop, sr = config.mel.hop_length, config.sample_rate
    groups = {"fit (served)": [v for v in SERVED_VOICES if v.engine == "espeak-ng"],
              "held out": [v for v in VOICES if v.name in HELD_OUT and v.engine == "espeak-ng"]}
    result = {}
    for group, voices in groups.items():
        pooled: dict[str, list] = {"estimate": [], "autocorrelation": [], "pyin": []}
        per_voice = {}
        for voice in voices:
            if not speech.usable(voice):
                continue
            mine: dict[str, list] = {k: [] for k in pooled}
            for text in TEXTS:
                x = speech.speak(voice, text)
                estimate = mel_voicing(log_mel(x, sr, config.mel), config) > 0
                mine["estimate"].append(estimate)
                mine["autocorrelation"].append(audio_voicing(x, hop, sr))
                if args.pyin:
                    import librosa

                    flag = librosa.pyin(x, fmin=70, fmax=400, sr=sr, frame_length=1024,
                                        hop_length=hop, center=True)[1]
                    mine["pyin"].append(flag[:len(estimate)])
            for k in pooled:
                pooled[k] += mine[k]
            per_voice[voice.name] = scores(np.concatenate(mine["estimate"]),
                                           np.concatenate(mine["autocorrelation"]))
        estimate = np.concatenate(pooled["estimate"])
        entry = {"voices": len(per_voice), "per_voice": per_voice,
                 "against autocorrelation": scores(estimate,
                                                   np.concatenate(pooled["autocorrelation"]))}
        if args.pyin:
            entry["against pyin"] = scores(estimate, np.concatenate(pooled["pyin"]))
            entry["autocorrelation against pyin"] = scores(
                np.concatenate(pooled["autocorrelation"]), np.concatenate(pooled["pyin"]))
        result[group] = entry
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for group, entry in result.items():
        print(f"{group}: {entry['voices']} espeak-ng voices x {len(TEXTS)} sentences")
        for name in [k for k in entry if k.startswith(("against", "autocorrelation"))]:
            s = entry[name]
            print(f"  mel estimate {name:32}" if name.startswith("against") else
                  f"  {name:45}",
                  f"agreement {s['agreement']:.3f}  kappa {s['kappa']:.3f}  recall "
                  f"{s['recall']:.3f}  precision {s['precision']:.3f}  ({s['frames']} frames)")
        worst = min(entry["per_voice"].items(), key=lambda kv: kv[1]["agreement"])
        best = max(entry["per_voice"].items(), key=lambda kv: kv[1]["agreement"])
        print(f"  per voice (autocorrelation): {worst[0]} {worst[1]['agreement']:.3f} .. "
              f"{best[0]} {best[1]['agreement']:.3f}")


if __name__ == "__main__":
    main()
