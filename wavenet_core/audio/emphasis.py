"""Pre-emphasis before mu-law, de-emphasis after (LPCNet's noise shaping for 8-bit audio).

A model with `config.preemphasis` = a > 0 learns the codes of p[n] = x[n] - a x[n-1]
(the mel it is conditioned on is still the mel of x). Its decoded output is filtered by
1 / (1 - a z^-1), which gives back x and shapes the 8-bit quantization and sampling noise
like a low-pass: less hiss at high frequencies, where speech has little energy.

Training needs only numpy (`preemphasize`); generation undoes it (`Deemphasis`, which
keeps its filter state between chunks, so a stream's audio does not depend on how it was
chunked).
"""

from __future__ import annotations

import numpy as np


def preemphasize(audio: np.ndarray, coef: float) -> np.ndarray:
    """p[n] = x[n] - coef * x[n-1], with x[-1] = 0 (streams start from silence)."""
    audio = np.asarray(audio, dtype=np.float32)
    if not coef:
        return audio
    out = audio.copy()
    out[1:] -= np.float32(coef) * audio[:-1]
    return out


class Deemphasis:
    """x[n] = p[n] + coef * x[n-1], per stream (rows), state carried between calls."""

    def __init__(self, coef: float, streams: int = 1):
        self.coef = float(coef)
        self.state = np.zeros(streams, dtype=np.float64)   # coef * x[n-1], per stream

    def reset(self, stream: int) -> None:
        self.state[stream] = 0.0

    def __call__(self, audio: np.ndarray, rows=None) -> np.ndarray:
        """Filter `audio` [len(rows), T] (or [T] for one stream) -> float32, same shape.

        `rows` are the stream indices of audio's rows (default: all streams in order)."""
        audio = np.asarray(audio, dtype=np.float32)
        if not self.coef:
            return audio
        from scipy.signal import lfilter  # generation only: training needs just numpy

        flat = audio.ndim == 1
        block = audio[None] if flat else audio
        rows = np.arange(len(block)) if rows is None else np.asarray(rows)
        out, final = lfilter([1.0], [1.0, -self.coef], block, axis=1,
                             zi=self.state[rows][:, None])
        self.state[rows] = final[:, 0]
        out = out.astype(np.float32)
        return out[0] if flat else out


def deemphasize(audio: np.ndarray, coef: float) -> np.ndarray:
    """One whole stream from silence (the inverse of `preemphasize`)."""
    return Deemphasis(coef)(audio)
