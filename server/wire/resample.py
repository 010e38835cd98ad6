"""The output sample rate: soxr's streaming resampler over one response's PCM chunks.

soxr dithers when it writes int16 itself, and its dither depends on where the chunks break;
in float32 its output does not. So the samples go in as float32 and come back rounded here
(`np.rint`, then clipped): a stream cut into any chunks gives bitwise the samples of the
whole (tests/server/wire/test_resample.py).
"""

from __future__ import annotations

import numpy as np

QUALITY = "HQ"


class StreamResampler:
    """PCM s16le at `in_rate` in, PCM s16le at `out_rate` out, chunk by chunk."""

    def __init__(self, in_rate: int, out_rate: int):
        import soxr

        self.in_rate, self.out_rate = in_rate, out_rate
        self._soxr = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32",
                                         quality=QUALITY)

    def feed(self, pcm: bytes) -> bytes:
        return self._run(pcm, last=False)

    def finish(self) -> bytes:
        """The samples still held back (the filter's tail); the stream ends here."""
        return self._run(b"", last=True)

    def close(self) -> None:
        """Drop the resampler's buffers now, not whenever the response object goes."""
        self._soxr = None

    def _run(self, pcm: bytes, last: bool) -> bytes:
        if self._soxr is None:
            return b""
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        y = self._soxr.resample_chunk(x, last=last)
        return to_s16(y)


def to_s16(x: np.ndarray) -> bytes:
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype("<i2").tobytes()


def resample_whole(pcm: bytes, in_rate: int, out_rate: int) -> bytes:
    """A whole signal at once: the same samples as any chunking of it (`StreamResampler`)."""
    if in_rate == out_rate:
        return pcm
    r = StreamResampler(in_rate, out_rate)
    return r.feed(pcm) + r.finish()
