"""The excitation spectrum's bands (benchmarks/excitation_spectrum.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.packaging import benchmark_module


def _spectrum():
    return benchmark_module("excitation_spectrum")


def test_white_noise_is_flat_and_a_tone_lands_in_its_band():
    es = _spectrum()
    rng = np.random.default_rng(0)
    white = es.band_power(rng.standard_normal(64000), 16000)
    assert white.shape == (8,)
    db = 10 * np.log10(white / white.mean())
    assert np.abs(db[1:]).max() < 0.5          # (band 0 loses half of the DC bin's window)
    tone = es.band_power(np.sin(2 * np.pi * 3500 * np.arange(16000) / 16000), 16000)
    assert tone.argmax() == 3 and tone[3] > 1000 * np.delete(tone, 3).max()
    with pytest.raises(ValueError, match="shorter than one frame"):
        es.band_power(np.zeros(100), 16000)
