"""16-bit PCM mono WAV read/write, and resampling.

Policy (documented in docs/training.md): `read_wav` converts, it never rejects usable audio:
several channels are averaged to mono, 8/16/24/32-bit PCM is accepted, and another
sample rate is resampled to the asked one (polyphase, windowed sinc). Anything that is
not PCM WAV (float WAV, compressed) raises `AudioError` naming the problem.

Bounded work from the header alone: a rate outside `MIN_RATE`..`MAX_RATE` (a 144-byte file
claiming 1 Hz or 4 GHz would otherwise be resampled into gigabytes) and, with `max_seconds`
given, audio longer than that are rejected before anything is converted or resampled.
"""

from __future__ import annotations

import io
import math
import wave
from pathlib import Path

import numpy as np

MIN_RATE, MAX_RATE = 8_000, 192_000


class AudioError(ValueError):
    """The bytes are not audio we can use; the message says why."""


def float_to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] -> int16 (clipped, rounded)."""
    return np.clip(np.round(np.asarray(audio, dtype=np.float32) * 32767.0), -32768, 32767).astype(
        "<i2"
    )


def write_wav(target, audio: np.ndarray, sample_rate: int) -> None:
    """Write float audio in [-1, 1] as 16-bit PCM mono WAV to a path or binary file."""
    pcm = float_to_pcm16(audio)
    with wave.open(str(target) if isinstance(target, (str, Path)) else target, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    write_wav(buf, audio, sample_rate)
    return buf.getvalue()


def read_wav(source, sample_rate: int | None = None, max_seconds: float | None = None
             ) -> tuple[np.ndarray, int]:
    """Read a PCM WAV (path, bytes or binary file) -> (float32 mono audio, sample rate).

    With `sample_rate` given, the audio is resampled to it and that rate is returned.
    With `max_seconds` given, longer audio raises `AudioError` before any conversion.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    name = str(source) if isinstance(source, (str, Path)) else "<bytes>"
    try:
        with wave.open(str(source) if isinstance(source, (str, Path)) else source, "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            if channels <= 0:
                raise AudioError(f"{name}: invalid header (channels={channels})")
            if not MIN_RATE <= rate <= MAX_RATE:
                raise AudioError(f"{name}: sample rate {rate} Hz is outside "
                                 f"{MIN_RATE}-{MAX_RATE} Hz")
            # the header's frame count may lie (streaming WAVs say 0xFFFFFFFF); the data
            # read is what counts, and it is never more than the file
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"{name}: not a PCM WAV file ({exc})") from exc
    seconds = len(frames) // max(1, width * channels) / rate
    if max_seconds is not None and seconds > max_seconds:
        raise AudioError(f"{name}: {seconds:.2f} s is longer than the {max_seconds:g} s limit")
    audio = _pcm_to_float(frames, width, name)
    usable = len(audio) - len(audio) % channels
    audio = audio[:usable].reshape(-1, channels).mean(axis=1).astype(np.float32)
    if sample_rate is not None and sample_rate != rate:
        audio = resample(audio, rate, sample_rate)
        rate = sample_rate
    return audio, rate


def _pcm_to_float(frames: bytes, width: int, name: str) -> np.ndarray:
    if width == 1:
        return (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    if width == 3:
        raw = np.frombuffer(frames[: len(frames) - len(frames) % 3], dtype=np.uint8).reshape(-1, 3)
        ints = (raw[:, 0].astype(np.int32) | (raw[:, 1].astype(np.int32) << 8)
                | (raw[:, 2].astype(np.int32) << 16))
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        return ints.astype(np.float32) / float(1 << 23)
    if width == 4:
        return np.frombuffer(frames, dtype="<i4").astype(np.float32) / float(1 << 31)
    raise AudioError(f"{name}: unsupported sample width {width} bytes")


def resample(audio: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited polyphase resampling (SciPy's resample_poly, Kaiser window)."""
    if orig_rate == target_rate:
        return np.asarray(audio, dtype=np.float32)
    from scipy.signal import resample_poly

    g = math.gcd(int(orig_rate), int(target_rate))
    out = resample_poly(np.asarray(audio, dtype=np.float64), target_rate // g, orig_rate // g)
    return out.astype(np.float32)
