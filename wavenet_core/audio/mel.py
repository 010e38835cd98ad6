"""Log-mel frontend (librosa / HiFi-GAN convention) and per-sample upsampling.

Why our own code: the server must compute exactly the features the model was trained on,
without librosa at run time. The recipe matches
``librosa.feature.melspectrogram(power=1.0, center=True, pad_mode='reflect', window='hann',
htk=False, norm='slaney')`` followed by HiFi-GAN's ``log(clamp(mel, min=1e-5))``
(natural log). The tests compare against librosa.

Alignment. With ``center=True`` the audio is reflect-padded by ``n_fft // 2`` on each side,
so frame ``f`` is centred on sample ``f * hop_length`` and ``len(audio)`` samples give
``1 + len(audio) // hop_length`` frames. ``mel_window`` gives sample ``s`` the linear
interpolation between the two frames whose centres surround it, at position
``s / hop_length`` in frame units; positions before frame 0 or after the last frame are
clamped to that frame. So sample ``f * hop_length`` sees frame ``f`` exactly.

The numpy arrays are the main API; torch tensors are accepted and returned as tensors.
"""

from __future__ import annotations

import numpy as np

from wavenet_core.model.config import MelConfig

LOG_CLAMP = 1e-5
"""HiFi-GAN's dynamic_range_compression floor: log-mel never goes below log(1e-5)."""

# Slaney's mel scale (librosa.hz_to_mel with htk=False): linear below 1 kHz, log above.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = _F_SP * mel
    log = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log, linear)


def mel_filterbank(sample_rate: int, mel_cfg: MelConfig) -> np.ndarray:
    """Slaney-normalised triangular filters, float32 ``[n_mels, n_fft // 2 + 1]``."""
    fmax = mel_cfg.fmax if mel_cfg.fmax else sample_rate / 2.0
    if not 0 <= mel_cfg.fmin < fmax:
        raise ValueError(f"need 0 <= fmin < fmax, got fmin={mel_cfg.fmin}, fmax={fmax}")
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, mel_cfg.n_fft // 2 + 1)
    edges = _mel_to_hz(
        np.linspace(_hz_to_mel(mel_cfg.fmin), _hz_to_mel(fmax), mel_cfg.n_mels + 2)
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # Slaney: constant area per filter
    return weights.astype(np.float32)


def _hann(win_length: int, n_fft: int) -> np.ndarray:
    """Periodic Hann window (scipy ``get_window('hann', fftbins=True)``), centred in n_fft."""
    n = np.arange(win_length)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    left = (n_fft - win_length) // 2
    return np.pad(window, (left, n_fft - win_length - left))


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _as_numpy(x) -> np.ndarray:
    if _is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _like(result: np.ndarray, original):
    if _is_torch(original):
        import torch

        return torch.from_numpy(result)
    return result


def magnitude_spectrogram(audio: np.ndarray, mel_cfg: MelConfig) -> np.ndarray:
    """|STFT| (power 1), float64 ``[frames, n_fft // 2 + 1]``, centred frames."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 1:
        raise ValueError(f"audio must be 1-D, got shape {audio.shape}")
    n_fft, hop = mel_cfg.n_fft, mel_cfg.hop_length
    if mel_cfg.win_length > n_fft:
        raise ValueError(f"win_length {mel_cfg.win_length} > n_fft {n_fft}")
    if audio.size == 0:
        return np.zeros((1, n_fft // 2 + 1))
    padded = np.pad(audio, n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    frames = frames[: 1 + len(audio) // hop]
    return np.abs(np.fft.rfft(frames * _hann(mel_cfg.win_length, n_fft), axis=-1))


def log_mel(audio, sample_rate: int, mel_cfg: MelConfig):
    """Audio (1-D float) -> log-mel float32 ``[1 + len(audio) // hop_length, n_mels]``."""
    mag = magnitude_spectrogram(_as_numpy(audio), mel_cfg)
    mel = mag @ mel_filterbank(sample_rate, mel_cfg).T.astype(np.float64)
    return _like(np.log(np.maximum(mel, LOG_CLAMP)).astype(np.float32), audio)


def num_frames(num_samples: int, hop_length: int) -> int:
    """Frames ``log_mel`` makes for ``num_samples`` samples (center=True)."""
    return 1 + int(num_samples) // int(hop_length)


def mel_window(mel, hop_length: int, start: int, count: int) -> np.ndarray:
    """Per-sample conditioning for samples ``start .. start+count-1`` -> ``[count, n_mels]``.

    Sample ``s`` lies between frames ``s // hop`` and the next, at weight ``(s % hop) / hop``
    (clamped to the last frame). Each row depends only on ``s`` and the two frames, never on
    the window, so any split of a stream into windows (training crops, generation chunks)
    gives bitwise the rows of the whole.
    """
    frames = np.asarray(_as_numpy(mel), dtype=np.float32)
    if frames.ndim != 2 or frames.shape[0] < 1:
        raise ValueError(f"mel must be [frames >= 1, n_mels], got shape {frames.shape}")
    if hop_length < 1 or start < 0 or count < 0:
        raise ValueError(f"need hop_length >= 1, start >= 0, count >= 0: got {hop_length}, "
                         f"{start}, {count}")
    left, right, weight = interpolation(start, count, hop_length, frames.shape[0] - 1)
    weight = weight[:, None]
    return frames[left] * (np.float32(1.0) - weight) + frames[right] * weight


def interpolation(start: int, count: int, hop_length: int, last: int):
    """`mel_window`'s rule for samples start .. start+count-1 of a mel whose last frame is
    `last` -> (left, right) frame indices [count] int64 and the right frame's weight [count]
    float32."""
    samples = np.arange(start, start + count, dtype=np.int64)
    frame = samples // hop_length
    left = np.minimum(frame, last)
    right = np.minimum(left + 1, last)
    weight = np.where(frame < last, (samples % hop_length) / hop_length, 0.0)
    return left, right, weight.astype(np.float32)


def frames_needed(hop: int, count: int) -> int:
    """Frames any window of `count` samples needs, whatever its phase (0 .. hop-1)."""
    return (hop - 1 + max(count, 1) - 1) // hop + 2


def ready_samples(frames: int, hop_length: int, final: bool, lookahead: int = 0) -> int:
    """How many samples of a mel arriving frame by frame ``mel_window`` can already give.

    F frames make ``F * hop_length`` samples in all; sample ``s`` reads frames ``s // hop``
    and the next, so while more frames may come only the samples before the last frame's
    centre, ``(F - 1) * hop_length``, are final (one frame of lookahead). Once no more frames
    will come (``final``), all ``F * hop_length`` are: the last frames are clamped exactly as
    when the whole mel was there from the start. `lookahead` more frames are held back until
    then (a conditioning network's, whose frame f reads frames up to f + lookahead).
    """
    if frames < 0 or hop_length < 1:
        raise ValueError(f"need frames >= 0 and hop_length >= 1, got {frames}, {hop_length}")
    return frames * hop_length if final else max(0, frames - 1 - lookahead) * hop_length


def stretch_mel(mel, speed: float) -> np.ndarray:
    """Play a mel ``speed`` times faster (0.25 .. 4): ``round(F / speed)`` frames (at least 1),
    frame ``j`` read at position ``j * speed`` of the original with the same linear
    interpolation between neighbouring frames as ``mel_window``, clamped at the last frame.
    Pitch stays: the vocoder re-synthesizes each frame's spectrum, only faster or slower."""
    frames = np.asarray(_as_numpy(mel), dtype=np.float32)
    if frames.ndim != 2 or frames.shape[0] < 1:
        raise ValueError(f"mel must be [frames >= 1, n_mels], got shape {frames.shape}")
    if not 0.25 <= speed <= 4.0:
        raise ValueError(f"speed must be in 0.25 .. 4.0, got {speed}")
    if speed == 1.0:
        return frames
    count = max(1, round(frames.shape[0] / speed))
    position = np.arange(count, dtype=np.float64) * speed
    last = frames.shape[0] - 1
    left = np.minimum(np.floor(position).astype(np.int64), last)
    right = np.minimum(left + 1, last)
    weight = np.where(left < last, position - left, 0.0).astype(np.float32)[:, None]
    return frames[left] * (np.float32(1.0) - weight) + frames[right] * weight
