"""A model's features from audio, by its recipe (wavenet_core/model/recipe.py), and the
range each recipe's features can take.

Why one module: every path that makes features from audio (the server's `audio` and `text`,
`wavenet generate --audio`, training) calls `model_features`, so a model always gets the
features of its own training, whatever project trained it. Each recipe is three steps:
1. the time signal: r9y9 v0.1.x's peak rescaling and pre-emphasis, master's FIR high-pass;
2. mel magnitudes: |STFT| (lws's, or centred reflect-padded frames with a periodic Hann
   window as librosa and NVIDIA's `STFT`) times the Slaney filterbank (`mel.mel_filterbank`,
   librosa's `filters.mel`);
3. compression: ln (ours, nvidia), 20 log10 normalised to [0, 1] (r9y9), log10 standardised
   per band (r9y9-master).
Compression is monotonic, so a recipe's range per band is its compression of 0 and of the
largest magnitude audio in [-1, 1] can make (`feature_range`); the server refuses a mel
outside it (`range_problem`), widened by `RANGE_MARGIN` of the span for an acoustic
model's overshoot. Every formula is float64; tests/audio/test_recipes.py proves each
against a reference written from its project's code.
"""

from __future__ import annotations

import functools

import numpy as np

from wavenet_core.audio.mel import LOG_CLAMP, magnitude_spectrogram, mel_filterbank
from wavenet_core.model.config import MelConfig, WaveNetConfig
from wavenet_core.model.recipe import FeatureRecipe

RANGE_MARGIN = 0.1
"""How far past its exact range (a fraction of the span, per band) a mel may go."""
MASTER_FLOOR = 1e-10
"""r9y9 master's `logmelspectrogram` floor before log10."""
HIGHPASS_TAPS = 255
"""r9y9 master's `low_cut_filter`: a 255-tap FIR (scipy `firwin`, pass_zero=False)."""


def model_features(audio, config: WaveNetConfig) -> np.ndarray:
    """Audio at the model's rate (1-D) -> the model's features, float32 [frames, n_mels]."""
    return features(audio, config.sample_rate, config.mel, config.features)


def features(audio, sample_rate: int, mel_cfg: MelConfig, recipe: FeatureRecipe) -> np.ndarray:
    """Audio (1-D, float, at `sample_rate`) -> features float32 [frames, n_mels]."""
    x = _signal(np.asarray(audio, dtype=np.float64), sample_rate, recipe)
    mel = _spectrum(x, mel_cfg, recipe) @ mel_filterbank(sample_rate, mel_cfg).T.astype(
        np.float64)
    return compress(mel, recipe).astype(np.float32)


def compress(mel: np.ndarray, recipe: FeatureRecipe) -> np.ndarray:
    """Mel magnitudes [..., n_mels] -> the recipe's features (float64)."""
    if recipe.kind in ("ours", "nvidia"):
        return np.log(np.maximum(mel, LOG_CLAMP))
    if recipe.kind == "r9y9":
        floor = np.exp(recipe.min_level_db / 20 * np.log(10))
        db = 20 * np.log10(np.maximum(floor, mel)) - recipe.ref_level_db
        return np.clip((db - recipe.min_level_db) / -recipe.min_level_db, 0, 1)
    return ((np.log10(np.maximum(mel, MASTER_FLOOR)) - np.asarray(recipe.mean))
            / np.asarray(recipe.scale))


def _signal(x: np.ndarray, sample_rate: int, recipe: FeatureRecipe) -> np.ndarray:
    """Step 1: what the STFT sees."""
    if x.ndim != 1:
        raise ValueError(f"audio must be 1-D, got shape {x.shape}")
    if recipe.rescaling_max and np.abs(x).max(initial=0.0) > 0:
        x = x / np.abs(x).max() * recipe.rescaling_max
    if recipe.preemphasis:                   # nnmnkwii: lfilter([1, -coef], [1], x)
        x = np.concatenate([x[:1], x[1:] - recipe.preemphasis * x[:-1]])
    if recipe.highpass_cutoff:
        from scipy.signal import lfilter

        x = lfilter(_highpass(sample_rate, recipe.highpass_cutoff), 1, x)
    return x


def _spectrum(x: np.ndarray, mel_cfg: MelConfig, recipe: FeatureRecipe) -> np.ndarray:
    """Step 2's |STFT| [frames, n_fft // 2 + 1]."""
    if recipe.kind == "r9y9" and recipe.stft == "lws":
        return lws_magnitude(x, mel_cfg.n_fft, mel_cfg.hop_length)
    return magnitude_spectrogram(x, mel_cfg)


@functools.lru_cache(maxsize=8)
def _highpass(sample_rate: int, cutoff: float) -> np.ndarray:
    from scipy.signal import firwin

    return firwin(HIGHPASS_TAPS, cutoff / (sample_rate // 2), pass_zero=False)


def lws_window(n_fft: int, hop: int) -> np.ndarray:
    """lws's default analysis window: sqrt of a symmetric (half-sample offset) Hann, scaled
    by 2 hop / n_fft."""
    k = np.arange(n_fft)
    hann = 0.5 * (1 - np.cos(2 * np.pi * (2 * k + 1) / (2 * n_fft)))
    return np.sqrt(hann * 2 * hop / n_fft)


def lws_frames(num_samples: int, n_fft: int, hop: int) -> int:
    """Frames lws's STFT makes (r9y9's `lws_num_frames`): n_fft - hop zeros each side,
    then one more frame unless the length is a multiple of hop."""
    length = num_samples + 2 * (n_fft - hop)
    return (length - n_fft) // hop + (1 if num_samples % hop == 0 else 2)


def lws_magnitude(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|lws.lws(n_fft, hop, mode="speech").stft(x)| [frames, n_fft // 2 + 1], float64."""
    if n_fft % hop:
        raise ValueError(f"the lws STFT needs n_fft ({n_fft}) a multiple of hop_length "
                         f"({hop})")
    pad, m = n_fft - hop, max(1, lws_frames(len(x), n_fft, hop))
    padded = np.zeros(max((m - 1) * hop + n_fft, len(x) + 2 * pad))
    padded[pad:pad + len(x)] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:m]
    return np.abs(np.fft.rfft(frames * lws_window(n_fft, hop), axis=-1))


@functools.lru_cache(maxsize=32)
def feature_range(sample_rate: int, mel_cfg: MelConfig,
                  recipe: FeatureRecipe) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) float64 [n_mels]: the values a recipe's features can take per band,
    widened by `RANGE_MARGIN` of the span. |STFT bin| <= peak * sum(window), so a band's
    magnitude is at most its filter's sum times that."""
    if recipe.kind == "r9y9" and recipe.stft == "lws":
        window = lws_window(mel_cfg.n_fft, mel_cfg.hop_length).sum()
    else:
        window = mel_cfg.win_length / 2.0           # a periodic Hann's sum
    peak = (recipe.rescaling_max or 1.0) * (1.0 + recipe.preemphasis)
    if recipe.highpass_cutoff:
        peak *= np.abs(_highpass(sample_rate, recipe.highpass_cutoff)).sum()
    bound = mel_filterbank(sample_rate, mel_cfg).astype(np.float64).sum(1) * window * peak
    low, high = compress(np.zeros_like(bound), recipe), compress(bound, recipe)
    margin = RANGE_MARGIN * (high - low) + 1e-3
    return low - margin, high + margin


@functools.lru_cache(maxsize=32)
def feature_range32(sample_rate: int, mel_cfg: MelConfig,
                    recipe: FeatureRecipe) -> tuple[np.ndarray, np.ndarray]:
    """`feature_range` as float32, rounded inwards: a float32 value lies within these
    exactly when it lies within the float64 range (and a NaN within neither)."""
    low, high = feature_range(sample_rate, mel_cfg, recipe)
    low32, high32 = low.astype(np.float32), high.astype(np.float32)
    low32 = np.where(low32 < low, np.nextafter(low32, np.float32(np.inf)), low32)
    high32 = np.where(high32 > high, np.nextafter(high32, np.float32(-np.inf)), high32)
    return low32, high32


def range_bounds32(config: WaveNetConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """This model's float32 (low, high) per band (`feature_range32`), or None where its mel
    is not as wide as its recipe's bands (features not analysis-made: nothing to bound).
    A streamed mel takes them once, not per frame: the cached lookup hashes the config."""
    low, high = feature_range32(config.sample_rate, config.mel, config.features)
    return (low, high) if len(low) == config.mel_channels else None


def within_bounds(mel: np.ndarray, bounds: tuple[np.ndarray, np.ndarray]) -> bool:
    """True when a float32 [frames, n_mels] mel is finite and within `bounds` (low, high):
    one float32 pass; False says only that the slower checks must say why."""
    low, high = bounds
    return bool(((mel >= low) & (mel <= high)).all())


def within_range(mel: np.ndarray, config: WaveNetConfig) -> bool:
    """`within_bounds` for this model's features (`range_problem` finds nothing): the
    check of a mel's frames in one pass."""
    bounds = range_bounds32(config)
    return bounds is not None and mel.shape[1] == config.mel_channels and within_bounds(
        mel, bounds)


def range_problem(mel: np.ndarray, config: WaveNetConfig) -> str | None:
    """Why a [frames, n_mels] mel cannot be this model's features, or None."""
    low, high = feature_range(config.sample_rate, config.mel, config.features)
    if mel.shape[1] != len(low):
        return None                         # not analysis-made features: nothing to bound
    bad = (mel < low) | (mel > high)
    if not bad.any():
        return None
    frame, band = (int(i) for i in np.argwhere(bad)[0])
    return (f"values from {mel.min():.4g} to {mel.max():.4g} are not this model's features: "
            f"it expects {config.features.describe()}, band {band} within "
            f"[{low[band]:.4g}, {high[band]:.4g}], but frame {frame} has "
            f"{mel[frame, band]:.4g}")
