"""espeak-ng from the `espeakng-loader` wheel (libespeak-ng and its voice data): text to speech
with no system package, so a fresh `pip install` speaks.

Each call runs `espeak_worker.py` in its own short-lived process, because the library keeps
state between utterances in static variables (in one process the same text comes out a
little different each time), and because a crash in C code then ends that process, not the
server. Starting Python and the library takes most of a call's time (about 70 of 90 ms for a
sentence), so `SPARES` workers are started ahead, each waiting for one call: a call takes
one and starts its replacement, and that start is off the call's path. The worker also
seeds the library's random generator, which otherwise follows the clock: the same text in
the same voice gives the same audio, as the `espeak-ng` program does.
"""

from __future__ import annotations

import atexit
import functools
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

SAMPLE_RATE = 22050
WORKER = Path(__file__).with_name("espeak_worker.py")
TIMEOUT_S = 60
SPARES = 4                 # workers started ahead: a burst of sentences finds them loaded
_spares: list[subprocess.Popen] = []
_lock = threading.Lock()


class EspeakLibError(RuntimeError):
    """The bundled espeak-ng is missing or failed; the message says which."""


def _run(args: list[str], text: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", str(WORKER), *args], input=text.encode(),
                          capture_output=True, timeout=TIMEOUT_S)


def _spawn() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-I", str(WORKER), "--wait"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _take() -> subprocess.Popen:
    """A started worker (a spare if one is alive, else a new one); the spares refilled."""
    with _lock:
        alive = [p for p in _spares if p.poll() is None]
        _spares[:] = alive
        proc = _spares.pop(0) if _spares else _spawn()
        while len(_spares) < SPARES:
            _spares.append(_spawn())
    return proc


@atexit.register
def close_spares() -> None:
    """End the waiting workers (each would end at its stdin's end anyway)."""
    with _lock:
        for proc in _spares:
            proc.kill()
            proc.wait()
        _spares.clear()


def _call(args: list[str], text: str) -> subprocess.CompletedProcess:
    proc = _take()
    try:
        out, err = proc.communicate((" ".join(args) + "\n" + text).encode(), TIMEOUT_S)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@functools.cache
def available() -> bool:
    """True when the wheel is installed and its library starts here."""
    try:
        import espeakng_loader  # noqa: F401
    except ImportError:
        return False
    return _run(["--check", "en"]).returncode == 0


@functools.cache
def has_voice(voice: str) -> bool:
    """True when the bundled data has the language voice and its `+variant`, if any."""
    return available() and _run(["--check", voice]).returncode == 0


def speak(voice: str, text: str, rate: int | None = None, pitch: int | None = None,
          max_samples: int | None = None) -> np.ndarray:
    """`text` in `voice` (e.g. "en-us+f2"), `rate` words per minute, `pitch` 0-99 ->
    float32 audio in [-1, 1] at `SAMPLE_RATE`; the same input gives the same audio.
    With `max_samples`, synthesis stops soon after that many (the result is longer, by
    at most one of the library's buffers, so a caller can tell it was cut)."""
    return speak_timed(voice, text, rate, pitch, max_samples)[0]


def speak_timed(voice: str, text: str, rate: int | None = None, pitch: int | None = None,
                max_samples: int | None = None) -> tuple[np.ndarray, list[tuple]]:
    """As `speak`, with the library's own timing: ("word", sample, position, length) per
    word (1-based character position in `text`) and ("end", sample) per clause end."""
    args = [voice, str(rate or 175), str(50 if pitch is None else pitch)]
    done = _call(args + ([str(max_samples)] if max_samples is not None else []), text)
    if done.returncode != 0:
        reason = {2: "the espeakng-loader wheel is missing or does not load",
                  3: f"no voice {voice!r}"}.get(done.returncode, f"exit {done.returncode}")
        detail = "\n".join(line for line in done.stderr.decode(errors="replace").splitlines()
                            if not line.startswith(("word ", "end ")))[-300:].strip()
        raise EspeakLibError(f"espeak-ng (bundled): {reason}" + (f": {detail}" if detail
                                                                  else ""))
    pcm = np.frombuffer(done.stdout[:len(done.stdout) // 2 * 2], dtype="<i2")
    return pcm.astype(np.float32) / np.float32(32768.0), _events(done.stderr)


def _events(stderr: bytes) -> list[tuple]:
    out = []
    for line in stderr.decode(errors="replace").splitlines():
        kind, *numbers = line.split() or [""]
        if kind in ("word", "end") and numbers and all(n.isdigit() for n in numbers):
            out.append((kind, *map(int, numbers)))
    return out
