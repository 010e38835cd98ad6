"""The text front end: speech synthesizers that turn text into audio at 16 kHz.

Used by the corpus builder (training speech) and by the server's text path (the vocoder
resynthesizes the mel of what a synthesizer said). Each `Voice` names an engine and its
voice; the registry of voices is voices.py.

espeak-ng voices come from the `espeakng-loader` wheel's library (`espeak_lib`) where it is
installed, so a fresh `pip install` speaks with no system package; without it, from a system
`espeak-ng` program. flite and festival voices need their system programs; Kokoro's
natural voices, its optional package (kokoro.py).
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wavenet_core.audio.wav import read_wav, resample
from wavenet_core.text import espeak_lib, kokoro
from wavenet_core.text.word_times import Word, fit_to_speech, from_events

SAMPLE_RATE = 16000


class SpeechError(RuntimeError):
    """A synthesizer is missing or failed; the message says which and why."""


@dataclass(frozen=True)
class Voice:
    """One speaker: a synthesizer (`engine`), its voice id and extra arguments."""

    name: str
    engine: str  # "espeak-ng" | "flite" | "festival" | "kokoro"
    voice: str
    args: tuple[str, ...] = ()

    def command(self, wav_path: str, text: str) -> tuple[list[str], str | None]:
        """(argv, stdin text) that renders `text` into `wav_path`."""
        if self.engine == "espeak-ng":
            return ["espeak-ng", "-v", self.voice, *self.args, "-w", wav_path, "--stdin"], text
        if self.engine == "flite":
            return ["flite", "-voice", self.voice, *self.args, "-t", text, "-o", wav_path], None
        if self.engine == "festival":
            return ["text2wave", "-eval", f"(voice_{self.voice})", "-o", wav_path], text
        raise SpeechError(f"unknown engine {self.engine!r}")


_BINARY = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}


@functools.cache
def _flite_voices() -> frozenset[str]:
    out = subprocess.run(["flite", "-lv"], capture_output=True, text=True, timeout=30).stdout
    return frozenset(out.split(":", 1)[-1].split())


def bundled(voice: Voice) -> bool:
    """True when `voice` renders through the wheel's espeak-ng library (no system program)."""
    return voice.engine == "espeak-ng" and espeak_lib.has_voice(voice.voice)


def _espeak_options(args: tuple[str, ...]) -> dict[str, int]:
    """("-s", "165", "-p", "60") -> {"rate": 165, "pitch": 60}: the espeak-ng command's
    speed and pitch flags, for the library."""
    names = {"-s": "rate", "-p": "pitch"}
    return {names[flag]: int(value) for flag, value in zip(args[::2], args[1::2])
            if flag in names}


@functools.cache
def usable(voice: Voice) -> bool:
    """Whether this machine renders `voice`: through the wheel's library or a program."""
    return bundled(voice) or program_available(voice)


@functools.cache
def _espeak_data() -> Path | None:
    info = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    data = re.search(r"Data at:\s*(\S+)", info)
    return Path(data.group(1)) if data else None


@functools.cache
def _espeak_language(base: str) -> bool:
    probe = subprocess.run(["espeak-ng", "-v", base, "-q", "a"], capture_output=True, timeout=30)
    return probe.returncode == 0


@functools.cache
def program_available(voice: Voice) -> bool:
    """Whether this machine's synthesizer programs can render `voice` (a missing espeak
    variant would fall back silently to the default voice, so its file is checked)."""
    if voice.engine == "kokoro":
        return kokoro.available()
    if shutil.which(_BINARY[voice.engine]) is None:
        return False
    if voice.engine == "flite":
        return voice.voice in _flite_voices()
    if voice.engine == "festival":
        return bool(glob.glob(f"/usr/share/festival/voices/*/{voice.voice}"))
    base, _, variant = voice.voice.partition("+")
    if not _espeak_language(base):
        return False
    data = _espeak_data()
    return not variant or data is None or Path(data, "voices", "!v", variant).exists()


def trim_and_normalise(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, top_db: float = 40.0,
                       margin_s: float = 0.05, peak: float = 0.9) -> np.ndarray:
    """Cut leading/trailing frames 40 dB under the loudest (keeping 50 ms), peak to 0.9."""
    start, stop = speech_bounds(audio, sample_rate, top_db, margin_s)
    clip = audio[start:stop]
    return (clip * (peak / np.max(np.abs(clip)))).astype(np.float32)


def speech_bounds(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, top_db: float = 40.0,
                  margin_s: float = 0.05) -> tuple[int, int]:
    """(start, stop) of `trim_and_normalise`'s cut."""
    hop = max(1, sample_rate // 100)
    frames = len(audio) // hop
    if frames == 0 or not np.any(audio):
        raise SpeechError("synthesizer produced silence")
    rms = np.sqrt(np.mean(audio[: frames * hop].reshape(frames, hop) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(rms >= rms.max() * 10 ** (-top_db / 20))[0]
    margin = int(margin_s * sample_rate)
    return max(0, loud[0] * hop - margin), min(len(audio), (loud[-1] + 1) * hop + margin)


def speak(voice: Voice, text: str, workdir: str | Path | None = None,
          program: bool | None = None, max_seconds: float | None = None) -> np.ndarray:
    """Synthesize `text` with `voice` -> trimmed, peak-normalised float32 audio at 16 kHz.

    `program` None: the bundled library where it has the voice, else the system program;
    True / False forces one. The text reaches a program as data (stdin or a single argv
    item, never a shell). With `max_seconds`, the bundled library stops rendering soon after
    that much audio (a caller checks the length; a system program renders it all).
    """
    if voice.engine == "kokoro":
        speed = dict(zip(voice.args[::2], voice.args[1::2])).get("speed", "1.0")
        try:
            audio = kokoro.render(voice.voice, text, float(speed), SAMPLE_RATE)
        except (subprocess.SubprocessError, ValueError) as exc:
            raise SpeechError(f"{voice.name}: {exc}") from None
        return trim_and_normalise(audio)
    if program is False or (program is None and bundled(voice)):
        return _speak_library(voice, text, max_seconds)[0]
    fd, name = tempfile.mkstemp(suffix=".wav", dir=workdir)
    os.close(fd)
    raw = Path(name)
    try:
        argv, stdin = voice.command(name, text)
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120)
        if done.returncode != 0 or raw.stat().st_size <= 44:
            raise SpeechError(f"{voice.name}: {' '.join(argv)} failed: {done.stderr[-300:]}")
        audio, _ = read_wav(raw, sample_rate=SAMPLE_RATE)
    finally:
        raw.unlink(missing_ok=True)
    return trim_and_normalise(audio)


def speak_timed(voice: Voice, text: str, max_seconds: float | None = None
                ) -> tuple[np.ndarray, list[Word]]:
    """`speak` and when each word is spoken, in seconds of the audio returned. The words
    come from espeak-ng's own timing: a voice the bundled library does not render (flite,
    festival, a system program) gives its audio and no words."""
    if not bundled(voice):
        return speak(voice, text, max_seconds=max_seconds), []
    return _speak_library(voice, text, max_seconds)


def _speak_library(voice: Voice, text: str, max_seconds: float | None
                   ) -> tuple[np.ndarray, list[Word]]:
    limit = None if max_seconds is None else int(max_seconds * espeak_lib.SAMPLE_RATE)
    try:
        raw, events = espeak_lib.speak_timed(voice.voice, text, **_espeak_options(voice.args),
                                             max_samples=limit)
    except espeak_lib.EspeakLibError as exc:
        raise SpeechError(f"{voice.name}: {exc}") from None
    if not raw.size:
        raise SpeechError(f"{voice.name}: the synthesizer produced no audio")
    words = from_events(text, events, espeak_lib.SAMPLE_RATE, len(raw))
    audio = resample(raw, espeak_lib.SAMPLE_RATE, SAMPLE_RATE)
    start, stop = speech_bounds(audio)
    clip = audio[start:stop]
    clip = (clip * (0.9 / np.max(np.abs(clip)))).astype(np.float32)
    seconds, shift = len(clip) / SAMPLE_RATE, start / SAMPLE_RATE
    words = [Word(w.word, max(0.0, w.start - shift), min(seconds, w.end - shift))
             for w in words]
    return clip, fit_to_speech([w for w in words if w.end > w.start], clip, SAMPLE_RATE)
