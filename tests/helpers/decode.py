"""Real decoders for what the server encodes, independent of its encoders where one exists:
libsndfile (soundfile) for mp3, Ogg Opus, FLAC and WAV, FFmpeg (PyAV) for ADTS AAC and for
streamed FLAC (libsndfile wants a length in STREAMINFO), the standard G.711 table for ulaw.
Also the comparison the tests make: alignment by the codec's delay and the SNR after it.
"""

from __future__ import annotations

import io

import numpy as np


def ulaw_to_linear(codes: bytes) -> np.ndarray:
    """G.711 mu-law codes -> int16, by the standard's expansion (as Sun's g711.c)."""
    u = ~np.frombuffer(codes, np.uint8).astype(np.int32) & 0xFF
    exponent, mantissa = (u >> 4) & 7, u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def decode(data: bytes, fmt: str, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Encoded bytes -> (int16 samples, sample rate). `rate` for the headerless formats."""
    if fmt == "pcm":
        return np.frombuffer(data, "<i2"), rate
    if fmt == "ulaw":
        return ulaw_to_linear(data), rate
    if fmt in ("mp3", "opus", "wav") or (fmt == "flac" and _flac_has_length(data)):
        import soundfile as sf

        samples, sr = sf.read(io.BytesIO(data), dtype="int16")
        return samples, sr
    import av

    with av.open(io.BytesIO(data)) as box:
        frames = [f.to_ndarray().reshape(-1) for f in box.decode(audio=0)]
        sr = box.streams.audio[0].sample_rate
    x = np.concatenate(frames) if frames else np.zeros(0, np.int16)
    if x.dtype.kind == "f":
        x = np.clip(np.rint(x * 32768), -32768, 32767)
    return x.astype(np.int16), sr


def _flac_has_length(data: bytes) -> bool:
    # STREAMINFO: 4-byte magic, 4-byte block header, then 13 bytes before the 36-bit total
    info = data[8:8 + 18]
    return len(info) == 18 and int.from_bytes(info[13:18], "big") & 0xFFFFFFFFF != 0


def best_lag(ref: np.ndarray, out: np.ndarray, max_lag: int = 3000) -> int:
    """The delay of `out` behind `ref` (an encoder's priming samples) by least squares."""
    ref, out = ref.astype(np.float64), out.astype(np.float64)
    n = min(len(ref), len(out) - max_lag) if len(out) > max_lag else len(out) // 2
    errors = [np.sum((out[lag:lag + n] - ref[:n]) ** 2) for lag in range(0, max_lag + 1)
              if lag + n <= len(out)]
    return int(np.argmin(errors))


def snr_db(ref: np.ndarray, out: np.ndarray, lag: int = 0) -> float:
    """Signal over error, dB, of `out` (delayed by `lag`) against `ref`, over their overlap."""
    ref, out = ref.astype(np.float64), out[lag:].astype(np.float64)
    n = min(len(ref), len(out))
    err = np.sum((out[:n] - ref[:n]) ** 2)
    return float("inf") if err == 0 else 10 * np.log10(np.sum(ref[:n] ** 2) / err)
