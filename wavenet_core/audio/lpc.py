"""Linear prediction from the log-mel alone (the excitation models of LPCNet, ExcitNet and
LP-WaveNet): the spectral envelope comes from signal processing, so the WaveNet only has
to learn the prediction's error, the excitation (docs/excitation.md).

Per mel frame (a frame's coefficients depend on that frame only, so a mel streamed in
frame by frame gives the whole mel's coefficients bitwise):
1. magnitude spectrum: a non-negative inverse of the Slaney filterbank. Each filter's
   value is first divided by the filter's area (its mean magnitude), then every FFT bin
   takes the filter-weighted mean of the filters covering it (bin 0, covered by none,
   copies bin 1). Spectra constant within each band come back exactly; nothing can go
   negative, so the autocorrelation below stays positive definite.
2. autocorrelation r_0 .. r_order: the inverse real FFT of the power spectrum, written as a
   cosine sum over the bins (only order + 1 lags are needed).
3. a Gaussian lag window (`LAG_WINDOW_HZ`, bandwidth expansion) and a white-noise floor
   (r_0 times 1 + `NOISE_FLOOR`, -40 dB): both keep the filter well inside stability.
4. Levinson-Durbin -> A(z) = 1 + a_1 z^-1 + ... + a_order z^-order, minimum phase.
5. the model's `lpc_expansion` gamma: a_k times gamma^k, every pole pulled in by gamma
   (1.0: unchanged).

The prediction of sample t is p_t = -(a_1 x_{t-1} + ... + a_order x_{t-order}) over the
last `order` output samples (linear, in [-1, 1]), with the coefficients of the frame whose
centre is nearest to t: frame `min((t + hop // 2) // hop, last)` (`frame_of_sample`).
That frame is never past `t // hop + 1`, the one frame of lookahead `mel.ready_samples`
already holds back, so mel streaming is unchanged (frame_rows.py: the rule the voicing
estimate shares). `lpc_window` gives a chunk's per-sample coefficient rows and is the one
function offline synthesis and the server's runner both call; `predict` is the one
fixed-order sum every path uses. `frame_spectrum` (step 1) is the voicing estimate's
input too (voicing.py). Steps 1-4 run compiled, frame by frame (frame_analysis.py). Step 1
undoes a natural-log Slaney mel, so `WaveNetConfig` refuses an excitation model (or
voicing-shaped sampling) whose feature recipe is not "ours" or "nvidia" (the same formula).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from wavenet_core.audio import frame_analysis
from wavenet_core.audio.frame_rows import frame_rows
from wavenet_core.audio.mel import mel_filterbank
from wavenet_core.model.config import MelConfig, WaveNetConfig

LAG_WINDOW_HZ = 60.0
NOISE_FLOOR = 1e-4


@functools.lru_cache(maxsize=16)
def _inverse(sample_rate: int, mel_cfg: MelConfig):
    """(per-filter scale [n_mels], inverse [bins, n_mels]), float64: step 1."""
    bank = mel_filterbank(sample_rate, mel_cfg).astype(np.float64)    # [n_mels, bins]
    area = bank.sum(1)
    cover = bank.sum(0)
    inverse = bank.T / np.where(cover > 0, cover, 1.0)[:, None]       # [bins, n_mels]
    covered = np.flatnonzero(cover > 0)
    for k in np.flatnonzero(cover <= 0):            # uncovered bins copy the nearest covered
        inverse[k] = inverse[covered[np.abs(covered - k).argmin()]]
    return 1.0 / np.where(area > 0, area, 1.0), inverse


@functools.lru_cache(maxsize=16)
def sparse_inverse(sample_rate: int, mel_cfg: MelConfig) -> tuple:
    """Step 1 as the compiled analysis takes it (frame_analysis.py): (scale, starts, cols,
    weights), each bin's few covering filters (two at most, the triangles overlap by half)
    in compressed rows."""
    scale, inverse = _inverse(sample_rate, mel_cfg)
    rows, cols = np.nonzero(inverse)
    starts = np.searchsorted(rows, np.arange(inverse.shape[0] + 1)).astype(np.int64)
    return scale, starts, cols.astype(np.int64), inverse[rows, cols]


@functools.lru_cache(maxsize=16)
def _lags(sample_rate: int, n_fft: int, order: int, expansion: float = 1.0):
    """(cosines [bins, order + 1], lag window [order + 1], expansion powers gamma^1 ..
    gamma^order), float64: steps 2, 3 and 5."""
    bins = np.arange(n_fft // 2 + 1)
    weight = np.full(len(bins), 2.0)
    weight[0] = 1.0
    if n_fft % 2 == 0:
        weight[-1] = 1.0
    lags = np.arange(order + 1)
    cosines = weight * np.cos(2 * np.pi * np.outer(lags, bins) / n_fft) / n_fft
    lag_window = np.exp(-0.5 * (2 * np.pi * LAG_WINDOW_HZ * lags / sample_rate) ** 2)
    powers = float(expansion) ** np.arange(1, order + 1, dtype=np.float64)
    return np.ascontiguousarray(cosines.T), lag_window, powers


def levinson(r: np.ndarray, order: int) -> np.ndarray:
    """Autocorrelation r_0 .. r_order (r_0 > 0) -> a_1 .. a_order of A(z) (float64)."""
    return frame_analysis.levinson(np.ascontiguousarray(r[:order + 1], np.float64), order)


def frame_spectrum(frame: np.ndarray, sample_rate: int, mel_cfg: MelConfig) -> np.ndarray:
    """One log-mel frame [n_mels] -> magnitude spectrum [n_fft // 2 + 1], float64 (step 1
    of the module docstring: the non-negative inverse of the filterbank)."""
    return frame_analysis.spectrum(np.ascontiguousarray(frame, np.float64),
                                   *sparse_inverse(sample_rate, mel_cfg))


def frame_lpc(frame: np.ndarray, sample_rate: int, mel_cfg: MelConfig, order: int,
              expansion: float = 1.0) -> np.ndarray:
    """One log-mel frame [n_mels] -> a_1 .. a_order, float32 (module docstring)."""
    return _lpc_rows(np.asarray(frame)[None], sample_rate, mel_cfg, order, expansion)[0]


def _lpc_rows(frames: np.ndarray, sample_rate: int, mel_cfg: MelConfig, order: int,
              expansion: float = 1.0):
    """Frames [n, n_mels] -> coefficients [n, order] float32, each frame alone."""
    frames = np.ascontiguousarray(frames, np.float64)
    cosines, lag_window, powers = _lags(sample_rate, mel_cfg.n_fft, order, expansion)
    return frame_analysis.lpc_frames(frames, np.arange(len(frames)),
                                     *sparse_inverse(sample_rate, mel_cfg), cosines,
                                     lag_window, NOISE_FLOOR, powers)


def mel_lpc(mel: np.ndarray, config: WaveNetConfig, frames=None) -> np.ndarray:
    """Log-mel [F, n_mels] -> coefficients [len(frames), order] float32 of the given frame
    indices (default all), each computed from its own frame alone."""
    mel = np.asarray(mel)
    picked = mel if frames is None else mel[np.asarray(frames, np.int64)]
    return _lpc_rows(picked.reshape(-1, mel.shape[-1]), config.sample_rate, config.mel,
                     config.lpc_order, config.lpc_expansion)


def lpc_window(mel, config: WaveNetConfig, start: int, count: int,
               frame_lpcs: dict | None = None) -> np.ndarray:
    """Per-sample coefficient rows [count, order] float32 for samples start .. start+count-1
    of a stream conditioned on the raw log-mel `mel` [F, n_mels] (the one function every
    caller uses for a chunk). A row depends only on its sample and one frame, never on the
    window (`frame_rows.frame_rows`). `frame_lpcs` (frame -> row), when given, caches
    frames between chunks."""
    return frame_rows(mel, config.mel.hop_length, start, count,
                      lambda m, frames: mel_lpc(m, config, frames), config.lpc_order,
                      frame_lpcs)


def timing_rows(config: WaveNetConfig, *shape: int) -> dict:
    """The `generate` keywords a timing run hands a backend: zero coefficient rows `lpc`
    [*shape, order] for an excitation model (p = 0, the same arithmetic as real rows),
    none for other models (whose backends may not take `lpc`)."""
    if not config.lpc_excitation:
        return {}
    return {"lpc": np.zeros(shape + (config.lpc_order,), np.float32)}


def tree_sum(values):
    """Sum over the last axis in one fixed pairwise order (zero-padded to a power of two),
    numpy or torch: elementwise adds only, so a row's sum never depends on the batch."""
    width = values.shape[-1]
    size = 1 << max(0, math.ceil(math.log2(max(width, 1))))
    if size != width:
        pad = [(0, 0)] * (values.ndim - 1) + [(0, size - width)]
        if isinstance(values, np.ndarray):
            values = np.pad(values, pad)
        else:
            import torch

            values = torch.nn.functional.pad(values, (0, size - width))
    while values.shape[-1] > 1:
        half = values.shape[-1] // 2
        values = values[..., :half] + values[..., half:]
    return values[..., 0]


def predict(history, coefs):
    """p = -(a_1 x_{t-1} + ... + a_order x_{t-order}): `history` [..., order] newest first
    (x_{t-1} .. x_{t-order}), `coefs` [..., order] (a_1 .. a_order); numpy or torch."""
    return -tree_sum(history * coefs)


def signal_history(x: np.ndarray, order: int) -> np.ndarray:
    """A whole signal [T] -> each sample's history [T, order], newest first, silence
    before the start."""
    padded = np.concatenate([np.zeros(order, np.float32), np.asarray(x, np.float32)])
    return np.lib.stride_tricks.sliding_window_view(padded, order)[:-1, ::-1]


def prediction(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A whole signal [T] from silence and its coefficient rows [T, order] -> p [T] float32,
    exactly what generation computes from the same samples."""
    return predict(signal_history(x, rows.shape[1]), rows).astype(np.float32)
