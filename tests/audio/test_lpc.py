"""Linear prediction from the log-mel (wavenet_core/audio/lpc.py, docs/excitation.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import lfilter

from wavenet_core.audio.lpc import (
    frame_lpc,
    levinson,
    lpc_window,
    mel_lpc,
    predict,
    prediction,
    signal_history,
)
from wavenet_core.audio.mel import LOG_CLAMP, log_mel
from wavenet_core.audio.mulaw import mulaw_encode, mulaw_encode_exact, mulaw_thresholds
from wavenet_core.model.config import MelConfig, WaveNetConfig

CONFIG = WaveNetConfig(mel_channels=80, excitation="lpc")


def gain_db(x, e) -> float:
    x, e = np.asarray(x, np.float64), np.asarray(e, np.float64)
    return 10 * np.log10(np.sum(x ** 2) / np.sum(e ** 2))


def excitation_of(x: np.ndarray, config: WaveNetConfig = CONFIG) -> np.ndarray:
    mel = log_mel(x, config.sample_rate, config.mel)
    return x - prediction(x, lpc_window(mel, config, 0, len(x)))


def ar_signal(poles, seconds=2.0, seed=0):
    """White noise through resonances (frequency Hz, radius) -> (x, A(z))."""
    a = np.array([1.0])
    for f, r in poles:
        w = 2 * np.pi * f / 16000
        a = np.convolve(a, [1, -2 * r * np.cos(w), r * r])
    u = np.random.default_rng(seed).standard_normal(int(16000 * seconds))
    x = lfilter([1.0], a, u)
    return (0.5 * x / np.abs(x).max()).astype(np.float32), a


@pytest.mark.parametrize("poles", [[(500, 0.97)], [(300, 0.95), (1500, 0.9), (3000, 0.85)],
                                   [(800, 0.99), (2500, 0.95)]])
def test_synthetic_ar_signals_are_predicted_almost_as_well_as_by_their_own_filter(poles):
    x, a = ar_signal(poles)
    got, ideal = gain_db(x, excitation_of(x)), gain_db(x, lfilter(a, [1.0], x))
    assert got > 20 and got > ideal - 7, (got, ideal)


def test_real_speech_is_predicted_from_its_mel():
    from wavenet_core.text import speech
    from wavenet_core.text.voices import available_voices

    voices = available_voices()[:3]
    if not voices:
        pytest.skip("no synthesizer voice on this machine")
    for voice in voices:
        x = speech.speak(voice, "The quick brown fox jumps over the lazy dog near the river.")
        assert gain_db(x, excitation_of(x)) > 10, voice.name


def roots_radius(a: np.ndarray) -> float:
    return float(np.abs(np.roots(np.concatenate([[1.0], a.astype(np.float64)]))).max())


@settings(max_examples=60, deadline=None)
@given(frame=st.lists(st.floats(np.log(LOG_CLAMP), 3.0), min_size=80, max_size=80),
       order=st.sampled_from([1, 4, 16, 24]))
def test_every_frame_gives_a_stable_filter(frame, order):
    a = frame_lpc(np.array(frame, np.float32), 16000, MelConfig(), order)
    assert a.dtype == np.float32 and a.shape == (order,)
    assert roots_radius(a) < 1.0


@settings(max_examples=30, deadline=None)
@given(frame=st.lists(st.floats(np.log(LOG_CLAMP), 3.0), min_size=80, max_size=80),
       gamma=st.floats(0.5, 1.0))
def test_expansion_scales_each_coefficient_and_pulls_the_poles_in(frame, gamma):
    frame = np.array(frame, np.float32)
    a = frame_lpc(frame, 16000, MelConfig(), 16).astype(np.float64)
    b = frame_lpc(frame, 16000, MelConfig(), 16, expansion=gamma).astype(np.float64)
    np.testing.assert_allclose(b, a * gamma ** np.arange(1, 17), rtol=2e-6, atol=1e-7)
    assert roots_radius(b) <= gamma * roots_radius(a) * (1 + 1e-4) + 1e-6


def test_the_model_option_reaches_every_row_and_lowers_the_resonance():
    x, _ = ar_signal([(700, 0.999), (1200, 0.998)], seconds=0.5)
    mel = log_mel(x, 16000, CONFIG.mel)
    expanded = WaveNetConfig(mel_channels=80, excitation="lpc", lpc_expansion=0.98)
    a, b = lpc_window(mel, CONFIG, 0, 4000), lpc_window(mel, expanded, 0, 4000)
    np.testing.assert_allclose(b, a * 0.98 ** np.arange(1, 17), rtol=2e-6, atol=1e-7)

    def peak_gain(rows):
        spectrum = np.fft.rfft(np.concatenate([np.ones((len(rows), 1)), rows], 1), 512, axis=1)
        return float((1 / np.abs(spectrum)).max())
    assert peak_gain(b) < 0.5 * peak_gain(a)


def test_speech_like_frames_give_stable_filters():
    x, _ = ar_signal([(700, 0.999), (1200, 0.998)], seconds=0.5)
    coefs = mel_lpc(log_mel(x, 16000, CONFIG.mel), CONFIG)
    assert max(roots_radius(a) for a in coefs) < 1.0


def test_silence_predicts_nothing():
    mel = np.full((3, 80), np.log(LOG_CLAMP), np.float32)
    assert np.abs(mel_lpc(mel, CONFIG)).max() < 1e-3


def test_levinson_solves_the_normal_equations():
    r = np.array([1.0, 0.8, 0.5, 0.2, 0.05])
    a = levinson(r, 4)
    toeplitz = r[np.abs(np.subtract.outer(np.arange(4), np.arange(4)))]
    np.testing.assert_allclose(toeplitz @ a, -r[1:], atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(1, 2000), min_size=1, max_size=5), start=st.integers(0, 700))
def test_chunks_and_a_streamed_mel_give_the_whole_rows_bitwise(cuts, start):
    x, _ = ar_signal([(400, 0.95), (2000, 0.9)], seconds=0.3, seed=3)
    mel = log_mel(x, 16000, CONFIG.mel)
    hop, total = CONFIG.mel.hop_length, len(mel) * CONFIG.mel.hop_length
    whole = lpc_window(mel, CONFIG, 0, total)
    bounds = sorted({start, total, *[min(total, start + c) for c in np.cumsum(cuts)]})
    cache: dict = {}
    parts = [lpc_window(mel, CONFIG, a, b - a, cache) for a, b in zip(bounds, bounds[1:])]
    np.testing.assert_array_equal(np.concatenate(parts), whole[start:])
    for frames in range(1, len(mel)):       # what a stream holds after `frames` frames
        ready = (frames - 1) * hop
        np.testing.assert_array_equal(lpc_window(mel[:frames], CONFIG, 0, ready), whole[:ready])


def test_prediction_equals_stepping_a_history_numpy_and_torch_bitwise():
    x, _ = ar_signal([(600, 0.9)], seconds=0.05, seed=5)
    rows = np.random.default_rng(1).standard_normal((len(x), 16)).astype(np.float32) * 0.3
    whole = prediction(x, rows)
    history = np.zeros(16, np.float32)
    stepped_np, stepped_t = [], []
    h_t = torch.zeros(1, 16)
    for t in range(len(x)):
        stepped_np.append(predict(history, rows[t]))
        stepped_t.append(predict(h_t, torch.from_numpy(rows[t:t + 1]))[0].item())
        history = np.concatenate([[x[t]], history[:-1]]).astype(np.float32)
        h_t = torch.cat([torch.tensor([[float(x[t])]]), h_t[:, :-1]], 1)
    np.testing.assert_array_equal(np.array(stepped_np, np.float32), whole)
    np.testing.assert_array_equal(np.array(stepped_t, np.float32), whole)
    np.testing.assert_array_equal(signal_history(x, 3)[4], x[[3, 2, 1]])


def test_exact_mulaw_encoder_agrees_with_mulaw_encode():
    x = np.random.default_rng(0).uniform(-1.2, 1.2, 200_000).astype(np.float32)
    exact = mulaw_encode_exact(x)
    assert (exact != mulaw_encode(x)).mean() < 1e-4    # only within an ulp of a threshold
    np.testing.assert_array_equal(mulaw_encode_exact(torch.from_numpy(x)).numpy(), exact)
    for classes in (17, 256):
        t = mulaw_thresholds(classes)
        assert len(t) == classes - 1 and np.all(np.diff(t) > 0)
        assert mulaw_encode_exact(np.array([-1.0, 1.0]), classes).tolist() == [0, classes - 1]
