"""Voicing-shaped sampling (FFTNet, LPCNet; docs/voicing.md): per-sample (temperature,
floor) rows that every backend's sampler takes in place of the stream's temperature.

A model whose config sets `voiced_temperature` or `voiced_floor` (`config.voicing_shaping`)
samples its voiced frames (audio/voicing.py, from the mel alone) at `voiced_temperature`
with the tail cut: the sharpened probabilities below `voiced_floor` are zeroed and the
rest renormalised (sampling.sample_codes). Unvoiced frames sample as a plain stream at
temperature 1 (no floor). A stream opened with an explicit temperature samples every
sample at that temperature with no floor: an explicit temperature turns the shaping off
(`wants_shaping`). Each sample takes the decision of the frame whose centre is nearest
(audio/frame_rows.py, the linear prediction's rule), so chunking and a streamed mel give
bitwise the whole mel's rows. `shaping_window` is the one function that makes a chunk's
rows; the generation session calls it per chunk and slot.
"""

from __future__ import annotations

import numpy as np

from wavenet_core.audio.frame_rows import frame_rows
from wavenet_core.audio.voicing import mel_voicing
from wavenet_core.model.config import WaveNetConfig

UNVOICED_TEMPERATURE = 1.0


def wants_shaping(config: WaveNetConfig, temperature: float | None) -> bool:
    """A stream samples shaped when its model sets it and it gave no temperature."""
    return temperature is None and config.voicing_shaping


def plain_rows(temperature: float, count: int) -> np.ndarray:
    """Rows [count, 2] of an unshaped stream: its temperature, no floor (the sampler then
    does exactly what it does without rows)."""
    rows = np.zeros((count, 2), np.float32)
    rows[:, 0] = temperature
    return rows


def shaping_window(mel, config: WaveNetConfig, start: int, count: int,
                   frame_voicing: dict | None = None) -> np.ndarray:
    """Rows [count, 2] float32 (temperature, floor) of samples start .. start+count-1 of a
    shaped stream conditioned on the raw log-mel `mel` [F, n_mels]. A row depends only on
    its sample and one frame; `frame_voicing` (frame -> score), when given, caches frames
    between chunks."""
    score = frame_rows(mel, config.mel.hop_length, start, count,
                       lambda m, frames: mel_voicing(m, config, frames)[:, None], 1,
                       frame_voicing)[:, 0]
    voiced = score > 0
    rows = plain_rows(UNVOICED_TEMPERATURE, count)
    rows[voiced, 0] = config.voiced_temperature
    rows[voiced, 1] = config.voiced_floor
    return rows


def check_shaping(rows, config: WaveNetConfig, n: int, num_steps: int) -> np.ndarray:
    """A backend's `shaping` argument -> contiguous float32 [n, num_steps, 2], checked."""
    if config.scalar_io:
        raise ValueError("voicing-shaped sampling needs a softmax output")
    rows = np.ascontiguousarray(np.asarray(rows, dtype=np.float32))
    if rows.shape != (n, num_steps, 2):
        raise ValueError(f"shaping must be [{n}, {num_steps}, 2], got {rows.shape}")
    return rows
