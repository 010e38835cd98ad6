"""The negative log-likelihood of a sample under a scalar-output model's distribution
(r9y9's, config.output "mol" or "gaussian"; sampling.py draws from the same parameters).

Written from wavenet_vocoder's losses (`wavenet_vocoder/mixture.py`), in float64, per
sample, in nats (`bits` divides by ln 2). Parameters are the head's outputs [..., C] in
their channel order; targets are samples in [-1, 1]; K = `num_classes` bins of width
2 / (K - 1) (65,536 for 16-bit audio, what their raw-audio training passes).
- mol (`discretized_mix_logistic_loss`): per mixture i, log scales clamped below at
  `log_scale_min`, the logistic's mass on the target's bin, `sigmoid((y - m + 1/(K-1)) / s)
  - sigmoid((y - m - 1/(K-1)) / s)`; below -0.999 the bin is open to the left, above 0.999
  to the right; where the mass is at most 1e-5 (their threshold) the bin's midpoint density
  times its width instead. Then log-sum-exp over the mixtures with log_softmax weights.
- gaussian (their GitHub master's `mix_gaussian_loss` with C = 2): their loss is the
  *continuous* Normal log density at the target (log std clamped at `log_scale_min`;
  "use continuous version as same as ClariNet", their comment). We add the log of the bin
  width 2 / (K - 1), as their mol does where it falls back to the density, so both are
  -log of one 16-bit bin's probability. That is a constant shift per sample: a
  precision's cost (a difference of NLLs, bench/precision_cost.py) is the same either way.
"""

from __future__ import annotations

import math

import numpy as np

PCM_CLASSES = 65536
"""Bins of 16-bit audio: r9y9's `quantize_channels` for raw (scalar) input."""
EDGE = 0.999            # their open edge bins
MASS_FLOOR = 1e-5       # their threshold for the midpoint-density fallback


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def logsumexp(x: np.ndarray) -> np.ndarray:
    """log(sum(exp(x))) over the last axis, shifted by its peak (no overflow)."""
    peak = x.max(axis=-1, keepdims=True)
    return np.log(np.exp(x - peak).sum(axis=-1)) + peak[..., 0]


def mol_nll(params, targets, log_scale_min: float,
            num_classes: int = PCM_CLASSES) -> np.ndarray:
    """-log P(target's bin) under a discretized mixture of logistics, nats, shape [...]."""
    params = np.asarray(params, np.float64)
    m = params.shape[-1] // 3
    logits, means = params[..., :m], params[..., m:2 * m]
    log_scales = np.maximum(params[..., 2 * m:3 * m], log_scale_min)
    y = np.asarray(targets, np.float64)[..., None]
    centered, inv = y - means, np.exp(-log_scales)
    half = 1.0 / (num_classes - 1)
    plus, minus, mid = inv * (centered + half), inv * (centered - half), inv * centered
    mass = _sigmoid(plus) - _sigmoid(minus)
    inner = np.where(mass > MASS_FLOOR, np.log(np.maximum(mass, 1e-12)),
                     mid - log_scales - 2.0 * _softplus(mid) - math.log((num_classes - 1) / 2))
    log_probs = np.where(y < -EDGE, plus - _softplus(plus),
                         np.where(y > EDGE, -_softplus(minus), inner))
    log_weights = logits - logsumexp(logits)[..., None]
    return -logsumexp(log_probs + log_weights)


def gaussian_nll(params, targets, log_scale_min: float,
                 num_classes: int = PCM_CLASSES) -> np.ndarray:
    """-(log N(target; mean, std) + log bin width), nats, shape [...] (module docstring)."""
    params = np.asarray(params, np.float64)
    mean, log_std = params[..., 0], np.maximum(params[..., 1], log_scale_min)
    z = (np.asarray(targets, np.float64) - mean) * np.exp(-log_std)
    log_density = -0.5 * z * z - log_std - 0.5 * math.log(2 * math.pi)
    return -(log_density + math.log(2.0 / (num_classes - 1)))


def scalar_nll(params, targets, config, num_classes: int = PCM_CLASSES) -> np.ndarray:
    """The NLL (nats) of each target under `config.output`'s distribution."""
    if config.output == "mol":
        return mol_nll(params, targets, config.log_scale_min, num_classes)
    if config.output == "gaussian":
        return gaussian_nll(params, targets, config.log_scale_min, num_classes)
    raise ValueError(f"output {config.output!r} is not a scalar distribution")


def bits(nats) -> np.ndarray:
    return np.asarray(nats) / math.log(2)
