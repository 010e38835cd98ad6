"""References written from each project's own feature code, as oracles for the recipes
(wavenet_core/audio/recipes.py): r9y9 wavenet_vocoder v0.1.x `audio.py` (rescaling from
their preprocessing, nnmnkwii's pre-emphasis, `lws.lws(fft_size, hop_size,
mode="speech").stft` as lws.pyx computes it, `librosa.filters.mel`, `_amp_to_db`,
`_normalize`); their master `audio.py` (`low_cut_filter`, `logmelspectrogram`) and
`preprocess_normalize.py` (the StandardScaler); NVIDIA tacotron2's `stft.py`
(`STFT.transform` as a conv1d with a Fourier basis, then `TacotronSTFT.mel_spectrogram`).
They need librosa (dev extra), scipy and torch."""

from __future__ import annotations

import numpy as np

from wavenet_core.model.config import MelConfig

V01_PRESET = dict(rescaling=True, rescaling_max=0.999, preemphasis=0.0, use_lws=True,
                  min_level_db=-100.0, ref_level_db=20.0)
"""r9y9 v0.1.x LJSpeech preset's audio hparams."""


def _basis(sr: int, mel: MelConfig) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=mel.n_fft, n_mels=mel.n_mels, fmin=mel.fmin,
                               fmax=mel.fmax)


def r9y9_v01_reference(wav, sr: int, hp: dict, mel: MelConfig) -> np.ndarray:
    """Their preprocessing's rescaling, then `audio.melspectrogram` (lws or librosa STFT)."""
    import librosa
    import scipy.signal as scipy_signal

    wav = np.asarray(wav, np.float64)
    if hp["rescaling"]:
        wav = wav / np.abs(wav).max() * hp["rescaling_max"]
    y = scipy_signal.lfilter([1.0, -hp["preemphasis"]], [1.0], wav)  # nnmnkwii.preemphasis
    if hp["use_lws"]:                   # lws.pyx: lws(fsize, fshift).stft, perfectrec=True
        fsize, fshift = mel.n_fft, mel.hop_length
        k = np.arange(1, 2 * fsize, 2)
        awin = np.sqrt(0.5 * (1 - np.cos(2 * np.pi * k / (2 * fsize))) * 2 * fshift / fsize)
        pad = np.zeros(fsize - fshift)
        x = np.hstack((pad, y, pad))
        m = (len(x) - fsize) // fshift + (1 if len(x) % fshift == 0 else 2)
        x = np.hstack((x, np.zeros((m - 1) * fshift + fsize - len(x))))
        spec = np.array([np.fft.fft(x[i * fshift:i * fshift + fsize] * awin)[:fsize // 2 + 1]
                         for i in range(m)])
        d = spec.T
    else:
        d = librosa.stft(y=y, n_fft=mel.n_fft, hop_length=mel.hop_length,
                         win_length=mel.win_length, pad_mode="reflect")
    min_level = np.exp(hp["min_level_db"] / 20 * np.log(10))             # _amp_to_db
    s = 20 * np.log10(np.maximum(min_level, np.dot(_basis(sr, mel), np.abs(d)))) \
        - hp["ref_level_db"]
    return np.clip((s - hp["min_level_db"]) / -hp["min_level_db"], 0, 1).T  # _normalize


def r9y9_master_reference(wav, sr: int, cutoff: float, mean, scale,
                          mel: MelConfig) -> np.ndarray:
    """`low_cut_filter`, `logmelspectrogram(pad_mode="reflect")`, `scaler.transform`."""
    import librosa
    import scipy.signal as scipy_signal

    x = np.asarray(wav, np.float64)
    if cutoff > 0:
        fil = scipy_signal.firwin(255, cutoff / (sr // 2), pass_zero=False)
        x = scipy_signal.lfilter(fil, 1, x)
    d = librosa.stft(y=x, n_fft=mel.n_fft, hop_length=mel.hop_length,
                     win_length=mel.win_length, window="hann", pad_mode="reflect")
    s = np.log10(np.maximum(np.dot(_basis(sr, mel), np.abs(d)), 1e-10)).T
    return (s - mean) / scale


def nvidia_reference(wav, sr: int, mel: MelConfig) -> np.ndarray:
    """tacotron2 stft.py: reflect pad n_fft/2, conv1d with the windowed Fourier basis,
    magnitude, mel basis, log(clamp(x, 1e-5)), all in float32 as theirs."""
    import librosa
    import torch
    import torch.nn.functional as F
    from scipy.signal import get_window

    n = mel.n_fft
    fourier = np.fft.fft(np.eye(n))
    cutoff = n // 2 + 1
    basis = np.vstack([np.real(fourier[:cutoff]), np.imag(fourier[:cutoff])])
    window = librosa.util.pad_center(get_window("hann", mel.win_length, fftbins=True), size=n)
    forward = torch.FloatTensor((basis * window)[:, None, :])
    y = torch.from_numpy(np.asarray(wav, np.float32))[None, None, None]
    y = F.pad(y, (n // 2, n // 2, 0, 0), mode="reflect").squeeze(1)
    out = F.conv1d(y, forward, stride=mel.hop_length, padding=0)
    magnitude = torch.sqrt(out[:, :cutoff] ** 2 + out[:, cutoff:] ** 2)
    spec = torch.matmul(torch.from_numpy(_basis(sr, mel)), magnitude)
    return torch.log(torch.clamp(spec, min=1e-5))[0].T.numpy()
