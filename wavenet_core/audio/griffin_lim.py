"""Griffin-Lim from a log-mel: the classic no-training baseline vocoder.

Used by the quality report (benchmarks/quality.py) as the reference a trained vocoder
must beat. Input is exactly what `wavenet_core.audio.mel.log_mel` makes: natural log of the
Slaney mel of |STFT| (power 1, periodic Hann, centred frames, reflect padding).

Recipe:
1. ``mel = exp(log_mel)`` (undo the log; the 1e-5 floor stays as a tiny magnitude).
2. Mel -> linear magnitude: the non-negative least-squares solution of
   ``filterbank @ S = mel``, started from the pseudo-inverse (clamped at 0) and refined
   with multiplicative NNLS updates ``S <- S * (Fᵀ mel) / (Fᵀ F S)`` that keep S >= 0.
3. Phase: "fast Griffin-Lim" (Perraudin, Balazs & Søndergaard 2013; the torchaudio /
   librosa recipe): alternate istft/stft projections with momentum 0.99, seeded random
   initial phase, torch.stft/istft with the mel config's n_fft, hop, win_length,
   periodic Hann window and ``center=True`` -- the same analysis as the mel frontend.
"""

from __future__ import annotations

import numpy as np
import torch

from wavenet_core.audio.mel import mel_filterbank
from wavenet_core.model.config import MelConfig


def mel_to_linear(mel: np.ndarray, sample_rate: int, mel_cfg: MelConfig,
                  nnls_iterations: int = 100) -> np.ndarray:
    """Mel magnitude ``[frames, n_mels]`` (not log) -> linear magnitude ``[frames, n_fft//2+1]``.

    Non-negative least squares against the Slaney filterbank: pseudo-inverse clamped at
    zero, then `nnls_iterations` multiplicative updates (each lowers the squared error).
    """
    mel = np.asarray(mel, dtype=np.float64)
    fb = mel_filterbank(sample_rate, mel_cfg).astype(np.float64)       # [n_mels, bins]
    if mel.ndim != 2 or mel.shape[1] != fb.shape[0]:
        raise ValueError(f"mel must be [frames, {fb.shape[0]}], got shape {list(mel.shape)}")
    target = mel.T                                                      # [n_mels, frames]
    spec = np.maximum(np.linalg.pinv(fb) @ target, 0.0)                 # [bins, frames]
    # Bins that no filter covers stay 0 (the updates never move a zero).
    covered = fb.sum(axis=0) > 0
    spec[covered] = np.maximum(spec[covered], 1e-8)
    numerator = fb.T @ target
    gram = fb.T @ fb
    for _ in range(nnls_iterations):
        spec *= numerator / np.maximum(gram @ spec, 1e-12)
    return spec.T.astype(np.float32)


def _window(mel_cfg: MelConfig) -> torch.Tensor:
    return torch.hann_window(mel_cfg.win_length, periodic=True, dtype=torch.float64)


def _stft(audio: torch.Tensor, mel_cfg: MelConfig, window: torch.Tensor) -> torch.Tensor:
    return torch.stft(audio, mel_cfg.n_fft, mel_cfg.hop_length, mel_cfg.win_length, window,
                      center=True, pad_mode="reflect", return_complex=True)


def _istft(spec: torch.Tensor, mel_cfg: MelConfig, window: torch.Tensor,
           length: int) -> torch.Tensor:
    return torch.istft(spec, mel_cfg.n_fft, mel_cfg.hop_length, mel_cfg.win_length, window,
                       center=True, length=length)


def griffin_lim_linear(magnitude: np.ndarray, mel_cfg: MelConfig, iterations: int = 60,
                       num_samples: int | None = None, momentum: float = 0.99,
                       seed: int = 0) -> np.ndarray:
    """Linear magnitude ``[frames, n_fft//2+1]`` -> float32 audio of `num_samples` samples.

    `num_samples` defaults to ``(frames - 1) * hop_length``; any length whose centred
    analysis gives the same frame count (``1 + num_samples // hop == frames``) matches
    the mel frontend exactly.
    """
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    mag = torch.from_numpy(np.asarray(magnitude, dtype=np.float64).T.copy())  # [bins, frames]
    frames = mag.shape[1]
    length = (frames - 1) * mel_cfg.hop_length if num_samples is None else int(num_samples)
    if length < 1:
        raise ValueError(f"need at least one output sample, got num_samples={length}")
    window = _window(mel_cfg)
    gen = torch.Generator().manual_seed(seed)
    angles = torch.exp(2j * np.pi * torch.rand(mag.shape, generator=gen, dtype=torch.float64))
    previous = torch.zeros_like(angles)
    for _ in range(iterations):
        audio = _istft(mag * angles, mel_cfg, window, length)
        rebuilt = _stft(audio, mel_cfg, window)
        if rebuilt.shape[1] != frames:   # a length that frames differently: fit, don't fail
            rebuilt = _fit_frames(rebuilt, frames)
        angles = rebuilt - previous * (momentum / (1.0 + momentum))
        angles = angles / (angles.abs() + 1e-16)
        previous = rebuilt
    audio = _istft(mag * angles, mel_cfg, window, length)
    return audio.to(torch.float32).numpy()


def _fit_frames(spec: torch.Tensor, frames: int) -> torch.Tensor:
    if spec.shape[1] > frames:
        return spec[:, :frames]
    pad = torch.zeros(spec.shape[0], frames - spec.shape[1], dtype=spec.dtype)
    return torch.cat([spec, pad], dim=1)


def griffin_lim(mel, sample_rate: int, mel_cfg: MelConfig, iterations: int = 60,
                num_samples: int | None = None, momentum: float = 0.99,
                seed: int = 0) -> np.ndarray:
    """Log-mel ``[frames, n_mels]`` (as `log_mel` makes it) -> float32 audio.

    `num_samples` defaults to ``(frames - 1) * hop_length``. Deterministic for a `seed`.
    """
    log = np.asarray(mel.detach().cpu().numpy() if isinstance(mel, torch.Tensor) else mel,
                     dtype=np.float64)
    if log.ndim != 2 or log.shape[0] < 1:
        raise ValueError(f"mel must be [frames >= 1, n_mels], got shape {list(log.shape)}")
    if not np.isfinite(log).all():
        raise ValueError("mel contains NaN or infinite values")
    magnitude = mel_to_linear(np.exp(log), sample_rate, mel_cfg)
    return griffin_lim_linear(magnitude, mel_cfg, iterations, num_samples, momentum, seed)
