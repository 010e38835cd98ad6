"""Per-sample rows from per-frame analysis of the log-mel: the one windowing rule that the
linear prediction (lpc.py) and the voicing estimate (voicing.py) share.

Sample t takes the row of the frame whose centre is nearest: frame
`min((t + hop // 2) // hop, last)` (`frame_of_sample`). That frame is never past
`t // hop + 1`, the one frame of lookahead `mel.ready_samples` already holds back, so a
mel streamed in frame by frame gives the whole mel's rows. Each frame is analysed alone
(never one matrix product over many frames, whose rounding could depend on how many
there are), so any chunking gives bitwise the same rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def frame_of_sample(samples: np.ndarray, hop: int, last: int) -> np.ndarray:
    """The frame whose row each sample takes: the nearest centre, clamped."""
    return np.minimum((np.asarray(samples, dtype=np.int64) + hop // 2) // hop, last)


def frame_rows(mel, hop: int, start: int, count: int, analyse: Callable, width: int,
               cache: dict | None = None) -> np.ndarray:
    """Rows [count, width] float32 of samples start .. start+count-1 of a stream
    conditioned on the raw log-mel `mel` [F, n_mels]: `analyse(mel, frames)` gives the
    rows [len(frames), width] of the listed frames, each from its own frame alone.
    `cache` (frame -> row), when given, keeps each frame's row between chunks."""
    mel = np.asarray(mel)
    if mel.ndim != 2 or mel.shape[0] < 1:
        raise ValueError(f"mel must be [frames >= 1, n_mels], got shape {mel.shape}")
    if count <= 0:
        return np.zeros((0, width), np.float32)
    frame = frame_of_sample(np.arange(start, start + count), hop, mel.shape[0] - 1)
    first = int(frame[0])
    needed = range(first, int(frame[-1]) + 1)        # consecutive samples: a run of frames
    cache = {} if cache is None else cache
    missing = [f for f in needed if f not in cache]
    if missing:
        cache.update(zip(missing, analyse(mel, missing)))
    table = np.stack([cache[f] for f in needed]).astype(np.float32, copy=False)
    return np.take(table, frame - first, axis=0)      # (4x faster than table[...])
