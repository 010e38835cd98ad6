"""benchmarks/matmul_alone.py times the kernel's real product: with and without the
activation packing in the timed loop it computes the same rows, and they are x @ W."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.packaging import benchmark_module


@pytest.mark.parametrize("precision,tolerance", [("fp32", 1e-5), ("int8a", 0.03)])
def test_the_timed_product_is_the_matrix_product(precision, tolerance):
    ma = benchmark_module("matmul_alone")
    shapes = [(64, 192)]
    results = [ma.case(np.random.default_rng(5), precision, shapes, 3, False, 1, packing)
               for packing in ((True, False) if precision == "int8a" else (True,))]
    for gops, seconds, _ in results:
        assert gops > 0 and seconds > 0
    np.testing.assert_array_equal(results[0][2], results[-1][2])
    rng = np.random.default_rng(5)           # the draws `case` made: weights, then x
    w = rng.standard_normal(shapes[0]).astype(np.float32) * 0.1
    x = rng.standard_normal(3 * 64).astype(np.float32).reshape(3, 64)
    expected = x @ w
    assert np.abs(results[0][2] - expected).max() <= tolerance * np.abs(expected).max()
