"""Our scalar NLL (generation/scalar_nll.py) against r9y9's losses on random parameters
and targets: the mixture of logistics against their `discretized_mix_logistic_loss` (the
`wavenet-vocoder` 0.1.1 package), the Gaussian against their master's formula, the
torch Normal log density their `mix_gaussian_loss` returns (0.1.1 has no Gaussian), plus
the bin width our docstring adds."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch

from wavenet_core.generation.scalar_nll import MASS_FLOOR, gaussian_nll, mol_nll

HAS_THEIRS = importlib.util.find_spec("wavenet_vocoder") is not None


def random_mol(rng, n: int, mixtures: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Parameters [n, 3M] and targets [n]: means near the targets for some (the bin-mass
    branch), far for others (the density fallback), log scales on both sides of the
    clamp, and targets on both open edges."""
    logits = rng.normal(0, 2, (n, mixtures))
    y = rng.uniform(-1, 1, n)
    y[:8] = [-1.0, 1.0, -0.9995, 0.9995, -1.0, 1.0, 0.5, -0.5]
    means = y[:, None] + rng.normal(0, 0.05, (n, mixtures)) * rng.integers(0, 2, (n, 1))
    means += rng.normal(0, 0.5, (n, mixtures)) * rng.integers(0, 2, (n, 1))
    log_scales = rng.uniform(-10, 0, (n, mixtures))
    return np.concatenate([logits, means, log_scales], axis=1), y


@pytest.mark.skipif(not HAS_THEIRS, reason="needs r9y9's wavenet-vocoder package (dev extra)")
@pytest.mark.parametrize("num_classes, log_scale_min", [(65536, -7.0), (65536, -32.236),
                                                        (256, -7.0)])
def test_mol_nll_equals_their_discretized_mix_logistic_loss(num_classes, log_scale_min):
    from wavenet_vocoder.mixture import discretized_mix_logistic_loss

    params, y = random_mol(np.random.default_rng(num_classes), 400)
    theirs = discretized_mix_logistic_loss(
        torch.from_numpy(params).T[None], torch.from_numpy(y)[None, :, None],
        num_classes=num_classes, log_scale_min=log_scale_min, reduce=False)[0, :, 0].numpy()
    ours = mol_nll(params, y, log_scale_min, num_classes)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
    # every branch of theirs was taken: both edges, the bin's mass and the density fallback
    m = params.shape[1] // 3
    s = np.exp(np.maximum(params[:, 2 * m:], log_scale_min))
    half = 1 / (num_classes - 1)
    sig = lambda v: 0.5 * (1 + np.tanh(v / 2))  # noqa: E731
    mass = sig((y[:, None] - params[:, m:2 * m] + half) / s) - sig(
        (y[:, None] - params[:, m:2 * m] - half) / s)
    inner = np.abs(y) <= 0.999
    assert (mass[inner] > MASS_FLOOR).any() and (mass[inner] <= MASS_FLOOR).any()
    assert (y < -0.999).any() and (y > 0.999).any()


def test_gaussian_nll_is_their_normal_log_density_per_bin():
    rng = np.random.default_rng(5)
    params = np.stack([rng.uniform(-1, 1, 300), rng.uniform(-12, 1, 300)], axis=1)
    y = np.clip(params[:, 0] + rng.normal(0, 0.2, 300), -1, 1)
    log_scale_min = -9.0
    t = torch.from_numpy(params)
    normal = torch.distributions.Normal(
        loc=0.0, scale=torch.exp(torch.clamp(t[:, 1], min=log_scale_min)))
    theirs = -normal.log_prob(torch.from_numpy(y) - t[:, 0]).numpy()
    ours = gaussian_nll(params, y, log_scale_min)
    np.testing.assert_allclose(ours, theirs - math.log(2 / 65535), rtol=0, atol=1e-4)
    assert (params[:, 1] < log_scale_min).any()          # the clamp was exercised
