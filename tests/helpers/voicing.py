"""Log-mels with voiced and unvoiced frames for any mel config (voicing-shaped sampling
tests): each frame is the log-mel of a designed magnitude spectrum, a harmonic comb
falling off above its first formants (voiced) or noise rising towards high frequencies
(unvoiced), in blocks of a few frames."""

from __future__ import annotations

import numpy as np

from wavenet_core.audio.mel import LOG_CLAMP, mel_filterbank
from wavenet_core.model.config import WaveNetConfig


def speech_like_mel(config: WaveNetConfig, frames: int, seed: int = 0,
                    block: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(log-mel [frames, n_mels] float32, which frames were made voiced [frames] bool)."""
    rng = np.random.default_rng(seed)
    mel_cfg = config.mel
    bank = mel_filterbank(config.sample_rate, mel_cfg).astype(np.float64)
    freqs = np.linspace(0, config.sample_rate / 2, mel_cfg.n_fft // 2 + 1)
    voiced = np.repeat(rng.random(-(-frames // block)) < 0.5, block)[:frames]
    out = np.empty((frames, mel_cfg.n_mels), np.float32)
    for f in range(frames):
        if voiced[f]:
            f0 = rng.uniform(100, 250)
            comb = np.exp(-0.5 * ((freqs / f0 - np.round(freqs / f0)) * f0 / 12) ** 2)
            spectrum = comb * np.exp(-freqs / 400) * (freqs >= f0 * 0.5)
        else:
            spectrum = rng.uniform(0.5, 1.5, len(freqs)) * (freqs / freqs[-1]) ** 2
        level = rng.uniform(5, 50)
        out[f] = np.log(np.maximum(bank @ (level * spectrum), LOG_CLAMP))
    return out, voiced
