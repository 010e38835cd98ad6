"""The representation floor's loop (benchmarks/excitation_floor.py): generation's loop with
the true excitation known."""

from __future__ import annotations

import numpy as np

from tests.helpers.packaging import benchmark_module


def _floor():
    return benchmark_module("excitation_floor")


def test_with_no_prediction_the_loop_is_plain_mu_law():
    ef = _floor()
    x = (0.5 * np.sin(np.arange(800) / 7.0)).astype(np.float32)
    rows = np.zeros((800, 4), np.float32)
    np.testing.assert_array_equal(ef.excitation_loop(x, rows, 256), ef.quantized(x, 256))


def test_the_loops_excitation_is_the_quantized_true_excitation():
    """Analysed with the library's prediction, the loop's output has as its excitation the
    8-bit codes of the original's (the loop is generation's recurrence, nothing else)."""
    from wavenet_core.audio.lpc import prediction

    ef = _floor()
    rng = np.random.default_rng(0)
    n, r, w = 3000, 0.9, 0.3
    a = np.array([-2 * r * np.cos(w), r * r], np.float32)
    drive = (0.03 * rng.standard_normal(n)).astype(np.float32)
    x = np.zeros(n, np.float32)
    for t in range(n):       # an AR(2) signal: x_t = e_t - a1 x_t-1 - a2 x_t-2
        x[t] = drive[t] - a[0] * (x[t - 1] if t else 0) - a[1] * (x[t - 2] if t > 1 else 0)
    x *= 0.5 / np.abs(x).max()
    rows = np.tile(a, (n, 1))
    y = ef.excitation_loop(x, rows, 256)
    codes = ef.quantized(x - prediction(x, rows), 256)
    np.testing.assert_allclose(y - prediction(y, rows), codes, atol=1e-6)
    assert not np.allclose(y, ef.quantized(x, 256))
