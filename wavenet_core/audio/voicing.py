"""Voicing from the log-mel alone, frame by frame (docs/voicing.md): which frames are voiced,
for the voicing-shaped sampling of FFTNet and LPCNet (generation/shaping.py).

Per mel frame, from that frame only (so a mel streamed in gives the whole mel's decisions):
1. the magnitude spectrum, the non-negative inverse of the filterbank that the linear
   prediction uses (`lpc.frame_spectrum`);
2. `low`: the log ratio of the power below `LOW_BAND_HZ` to the power above it (voiced
   speech puts most of its energy in the first formants, fricatives and silence do not);
3. `harmonicity`: the log magnitude below `LOW_BAND_HZ`, less its moving average over
   `DETREND_HZ`, and the largest normalised autocorrelation of that ripple across
   frequency at lags of a pitch in `PITCH_HZ` (harmonics are peaks every f0; the mel's
   narrow low bands, 37 Hz apart at 80 bands, resolve them);
4. score = `WEIGHTS[0] + WEIGHTS[1] * low + WEIGHTS[2] * harmonicity`; voiced when > 0.
The weights are a logistic regression fitted to the autocorrelation voicing decision of
the real audio (`audio_voicing`) on 7 espeak-ng voices x 3 sentences, and checked on 12
voices held out of that fit (benchmarks/voicing.py; agreement in docs/voicing.md). Steps
2-4 run compiled, frame by frame (frame_analysis.py).

`audio_voicing` is that reference: a normalised autocorrelation pitch detector on the
waveform, per frame centre (what a mel-only estimate is measured against, never used in
generation).
"""

from __future__ import annotations

import functools

import numpy as np

from wavenet_core.audio import frame_analysis
from wavenet_core.audio.lpc import frame_spectrum, sparse_inverse
from wavenet_core.model.config import MelConfig, WaveNetConfig

LOW_BAND_HZ = 1000.0
DETREND_HZ = 150.0
PITCH_HZ = (70.0, 400.0)
WEIGHTS = (-3.25, 1.0, 4.9)


@functools.lru_cache(maxsize=16)
def _bands(sample_rate: int, n_fft: int):
    """(low bins, detrend width, lags) of the FFT grid: bins below LOW_BAND_HZ, the moving
    average's width in bins, the pitch lags in bins (those the ripple is long enough for)."""
    bin_hz = sample_rate / n_fft
    low = int(np.count_nonzero(np.arange(n_fft // 2 + 1) * bin_hz < LOW_BAND_HZ))
    width = max(1, int(round(DETREND_HZ / bin_hz)))
    ripple = low - width + 1
    lags = np.arange(max(1, int(np.ceil(PITCH_HZ[0] / bin_hz))),
                     min(int(PITCH_HZ[1] / bin_hz), ripple - 2) + 1, dtype=np.int64)
    return low, width, lags


def voicing_features(frame: np.ndarray, sample_rate: int, mel_cfg: MelConfig
                     ) -> tuple[float, float]:
    """One log-mel frame [n_mels] -> (low-band log power ratio, harmonicity)."""
    return frame_analysis.voicing_features(frame_spectrum(frame, sample_rate, mel_cfg),
                                           *_bands(sample_rate, mel_cfg.n_fft))


def mel_voicing(mel: np.ndarray, config: WaveNetConfig, frames=None) -> np.ndarray:
    """Log-mel [F, n_mels] -> voicing scores [len(frames)] float32 (voiced when > 0) of the
    given frame indices (default all), each from its own frame alone (step 4)."""
    mel = np.asarray(mel)
    picked = mel if frames is None else mel[np.asarray(frames, np.int64)]
    picked = np.ascontiguousarray(picked.reshape(-1, mel.shape[-1]), np.float64)
    return frame_analysis.voicing_frames(picked, np.arange(len(picked)),
                                         *sparse_inverse(config.sample_rate, config.mel),
                                         *_bands(config.sample_rate, config.mel.n_fft),
                                         *WEIGHTS)


def audio_voicing(audio: np.ndarray, hop: int, sample_rate: int, window_s: float = 0.04,
                  threshold: float = 0.6, silence_db: float = -40.0) -> np.ndarray:
    """The reference: voiced [1 + len(audio) // hop] bool per frame centre f * hop, where
    the normalised autocorrelation of a `window_s` window peaks above `threshold` at a
    lag of a pitch in PITCH_HZ and the window is within `silence_db` of the loudest."""
    x = np.asarray(audio, np.float64)
    win = int(window_s * sample_rate)
    lo, hi = int(sample_rate / PITCH_HZ[1]), int(np.ceil(sample_rate / PITCH_HZ[0]))
    frames = 1 + len(x) // hop
    padded = np.pad(x, (win, win + hi))
    peak, energy = np.zeros(frames), np.zeros(frames)
    for f in range(frames):
        at = f * hop + win - win // 2
        a = padded[at:at + win]
        later = np.lib.stride_tricks.sliding_window_view(padded[at + lo:at + hi + win], win)
        energy[f] = a @ a
        norms = np.sqrt(energy[f] * np.einsum("ij,ij->i", later, later)) + 1e-12
        peak[f] = np.max(later @ a / norms)
    db = 10 * np.log10(energy + 1e-12)
    return (peak > threshold) & (db > db.max() + silence_db)
