"""The mel frontend matches librosa + HiFi-GAN's log clamp, and upsampling is aligned."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.mel import upsample_mel
from wavenet_core.audio.mel import (
    LOG_CLAMP,
    log_mel,
    mel_filterbank,
    mel_window,
    num_frames,
)
from wavenet_core.model.config import MelConfig

SR = 16000
CONFIGS = [
    MelConfig(),
    MelConfig(n_mels=40, n_fft=512, win_length=400, hop_length=160, fmin=50.0, fmax=7600.0),
    MelConfig(n_mels=80, n_fft=1024, win_length=1024, hop_length=200, fmin=0.0, fmax=4000.0),
]


def _librosa_log_mel(audio: np.ndarray, cfg: MelConfig) -> np.ndarray:
    librosa = pytest.importorskip("librosa")
    mel = librosa.feature.melspectrogram(
        y=audio, sr=SR, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
        window="hann", center=True, pad_mode="reflect", power=1.0, n_mels=cfg.n_mels,
        fmin=cfg.fmin, fmax=cfg.fmax, norm="slaney", htk=False,
    )
    return np.log(np.maximum(mel, LOG_CLAMP)).T


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(SR // 2) / SR
    sine = 0.5 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * np.sin(2 * np.pi * 3100.0 * t)
    noise = rng.uniform(-0.5, 0.5, 7001)
    return {"noise": noise.astype(np.float32), "sine": sine.astype(np.float32)}


@pytest.mark.parametrize("cfg", CONFIGS)
def test_filterbank_matches_librosa(cfg):
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(SR, cfg)
    ref = librosa.filters.mel(sr=SR, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin,
                              fmax=cfg.fmax, htk=False, norm="slaney")
    assert ours.shape == (cfg.n_mels, cfg.n_fft // 2 + 1)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("name", ["noise", "sine"])
def test_log_mel_matches_librosa(cfg, name):
    audio = _signals()[name]
    ours = log_mel(audio, SR, cfg)
    ref = _librosa_log_mel(audio, cfg)
    assert ours.shape == ref.shape == (num_frames(len(audio), cfg.hop_length), cfg.n_mels)
    assert ours.dtype == np.float32
    audible = ref > np.log(1e-4)
    assert audible.mean() > 0.2
    assert np.max(np.abs(ours - ref)[audible]) < 1e-4
    assert np.max(np.abs(ours - ref)) < 1e-2  # librosa works in float32: looser near the floor


def test_log_mel_floor_and_torch_input():
    torch = pytest.importorskip("torch")
    cfg = MelConfig()
    silent = log_mel(np.zeros(1000, np.float32), SR, cfg)
    assert np.allclose(silent, np.log(LOG_CLAMP))
    audio = _signals()["sine"]
    as_tensor = log_mel(torch.from_numpy(audio), SR, cfg)
    assert isinstance(as_tensor, torch.Tensor)
    np.testing.assert_array_equal(as_tensor.numpy(), log_mel(audio, SR, cfg))


def test_upsample_constant_and_shape():
    mel = np.full((5, 3), 2.5, np.float32)
    up = upsample_mel(mel, hop_length=4, num_samples=23)
    assert up.shape == (23, 3) and up.dtype == np.float32
    assert np.all(up == 2.5)


def test_upsample_alignment():
    hop, frames = 8, 6
    rng = np.random.default_rng(1)
    mel = rng.normal(size=(frames, 4)).astype(np.float32)
    n = (frames - 1) * hop + 5
    up = upsample_mel(mel, hop, n)
    for f in range(frames):
        np.testing.assert_array_equal(up[f * hop], mel[f])  # frame centres are exact
    # halfway between centres is the mean; past the last centre it is clamped
    np.testing.assert_allclose(up[hop + hop // 2], (mel[1] + mel[2]) / 2, rtol=1e-6)
    np.testing.assert_allclose(up[1], mel[0] * (7 / 8) + mel[1] * (1 / 8), rtol=1e-6)
    assert np.all(up[(frames - 1) * hop:] == mel[-1])


def test_upsample_matches_log_mel_frames():
    cfg = MelConfig(hop_length=160, n_fft=512, win_length=512, n_mels=20)
    audio = _signals()["noise"]
    mel = log_mel(audio, SR, cfg)
    up = upsample_mel(mel, cfg.hop_length, len(audio))
    assert up.shape == (len(audio), cfg.n_mels)
    np.testing.assert_array_equal(up[::cfg.hop_length], mel[: len(up[::cfg.hop_length])])
    with pytest.raises(ValueError):
        upsample_mel(mel[0], cfg.hop_length, 10)


def test_ready_samples_is_one_frame_of_lookahead_until_the_end():
    from wavenet_core.audio.mel import ready_samples

    assert [ready_samples(f, 4, final=False) for f in range(4)] == [0, 0, 4, 8]
    assert [ready_samples(f, 4, final=True) for f in range(4)] == [0, 4, 8, 12]
    mel = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    for frames in range(1, 7):        # the ready samples' rows never change as frames come
        n = ready_samples(frames, 4, final=False)
        assert np.array_equal(mel_window(mel[:frames], 4, 0, n), mel_window(mel, 4, 0, n))


def test_stretch_mel_changes_the_length_and_keeps_the_frames():
    from wavenet_core.audio.mel import stretch_mel

    mel = np.random.default_rng(1).normal(size=(40, 5)).astype(np.float32)
    assert stretch_mel(mel, 1.0) is not None and np.array_equal(stretch_mel(mel, 1.0), mel)
    fast, slow = stretch_mel(mel, 2.0), stretch_mel(mel, 0.5)
    assert fast.shape == (20, 5) and slow.shape == (80, 5)
    assert np.array_equal(fast, mel[::2])                 # integer positions: the frames
    assert np.allclose(slow[1::2][:-1], (mel[:-1] + mel[1:]) / 2, atol=1e-6)
    assert stretch_mel(mel[:1], 4.0).shape == (1, 5)
    with pytest.raises(ValueError, match="speed"):
        stretch_mel(mel, 5.0)
