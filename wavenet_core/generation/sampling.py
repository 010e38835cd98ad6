"""Sampling from logits with a per-stream, counter-based RNG.

A stream's n-th draw is a pure function of (seed, n): `counter_uniform` hashes the two
with 32-bit integer mixing (Wellons' lowbias32), so a stream's samples never depend on
which other streams share the batch, on slot numbers or on chunk sizes. Every backend
uses these exact integer operations, so the uniforms are bitwise identical everywhere.

Temperature 0 is greedy (argmax); otherwise inverse-CDF sampling from softmax(logits/T).
A `floor` (voicing-shaped sampling, generation/shaping.py) first zeroes the probabilities
of softmax(logits/T) below it, LPCNet's tail cut; the draw then renormalises (it scales u
by the kept total). A floor of 0 zeroes nothing: the draw is bitwise the unfloored one.

Scalar outputs (r9y9's, config.output "mol" or "gaussian") take a fixed number of draws per
sample, `draws_per_sample`: draw j of sample n uses counter n * D + j (mod 2**32, so a
stream's draws repeat after 2**32 / D samples: 74 hours at 16 kHz for 10 mixtures).
- mol: u_0 .. u_{M-1} pick the mixture by Gumbel-max, `argmax(logit_i - log(-log(u_i)))`,
  and u_M the logistic sample `mean + T * exp(log_scale) * (log(u) - log(1 - u))`, each u
  first mapped to [1e-5, 1 - 1e-5] (r9y9's `sample_from_discretized_mix_logistic`).
- gaussian: `mean + T * exp(log_std) * sqrt(-2 log(1 - u_0)) * cos(2 pi u_1)` (Box-Muller).
log scales are clamped below at `log_scale_min`, the sample to [-1, 1]; temperature T = 0
gives the most likely mixture's mean. Their codes are 16-bit PCM, round(32767 x).

Excitation models (`excitation` "lpc", docs/excitation.md) sample the mu-law code of the
excitation e like any softmax model (one draw), then make x = clamp(p + decode(e), -1, 1)
with the sample's linear prediction p; x is fed back unrounded and returned as 16-bit PCM.
The code is decoded through a table, never a per-element `expm1`, so a slot's x does not
depend on how many other slots share the call.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from wavenet_core.audio.mulaw import mulaw_decode, mulaw_table

MASK32 = 0xFFFFFFFF
SEED_SALT = 0x9E3779B9
MIX_1 = 0x7FEB352D
MIX_2 = 0x846CA68B
MAX_SEED = MASK32
PCM_SCALE = 32767.0
U_LOW = 1e-5          # r9y9 draws its uniforms from [1e-5, 1 - 1e-5]


def mix32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 on int64 tensors holding 32-bit values (products stay below 2**63)."""
    x = x ^ (x >> 16)
    x = (x * MIX_1) & MASK32
    x = x ^ (x >> 15)
    x = (x * MIX_2) & MASK32
    return x ^ (x >> 16)


def counter_uniform(seeds: torch.Tensor, counters: torch.Tensor) -> torch.Tensor:
    """Uniforms in [0, 1) as float32 with 24 random bits, one per (seed, counter) pair."""
    seeds = seeds.to(torch.int64) & MASK32
    counters = counters.to(torch.int64) & MASK32
    h = mix32(mix32(seeds ^ SEED_SALT) ^ counters)
    return (h >> 8).to(torch.float32) * (1.0 / (1 << 24))


def sample_codes(logits: torch.Tensor, temperature: torch.Tensor,
                 uniforms: torch.Tensor, floor: torch.Tensor | None = None) -> torch.Tensor:
    """logits [n, classes], temperature [n], uniforms [n] (, floor [n]) -> codes [n] int64."""
    greedy = logits.argmax(dim=1)
    safe_t = torch.where(temperature > 0, temperature, torch.ones_like(temperature))
    scaled = logits / safe_t.unsqueeze(1)
    probs = torch.exp(scaled - scaled.max(dim=1, keepdim=True).values)
    if floor is not None:           # zero p < floor, p = probs / their total
        cut = floor.to(probs.device).unsqueeze(1) * probs.sum(dim=1, keepdim=True)
        probs = torch.where(probs < cut, torch.zeros_like(probs), probs)
    cdf = torch.cumsum(probs, dim=1)
    target = (uniforms * cdf[:, -1]).unsqueeze(1)
    drawn = (cdf <= target).sum(dim=1).clamp_(max=logits.size(1) - 1)
    return torch.where(temperature > 0, drawn, greedy)


def draws_per_sample(config) -> int:
    """Uniforms one sample takes: 1 (softmax), mixtures + 1 (mol), 2 (gaussian)."""
    return {"softmax": 1, "mol": config.mixtures + 1, "gaussian": 2}[config.output]


def r9y9_uniform(u: torch.Tensor) -> torch.Tensor:
    """[0, 1) -> [1e-5, 1 - 1e-5], as r9y9's `uniform_(1e-5, 1 - 1e-5)` maps its draws."""
    return U_LOW + (1.0 - 2 * U_LOW) * u


def sample_scalar(params: torch.Tensor, config, temperature: torch.Tensor,
                  seeds: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Mixture or Gaussian parameters [n, output_channels] -> samples [n] in [-1, 1]."""
    draws = draws_per_sample(config)
    base = positions.to(torch.int64) * draws
    u = torch.stack([counter_uniform(seeds, base + j) for j in range(draws)], 1)
    u = u.to(params.device)
    t = temperature.to(params.device)
    if config.output == "gaussian":
        mean = params[:, 0]
        scale = torch.exp(torch.clamp(params[:, 1], min=config.log_scale_min))
        normal = torch.sqrt(-2.0 * torch.log1p(-u[:, 0])) * torch.cos(2 * torch.pi * u[:, 1])
        return torch.clamp(mean + t * scale * normal, -1.0, 1.0)
    m = config.mixtures
    logits = params[:, :m]
    gumbel = logits - torch.log(-torch.log(r9y9_uniform(u[:, :m])))
    pick = torch.where(t > 0, gumbel.argmax(1), logits.argmax(1)).unsqueeze(1)
    mean = params[:, m:2 * m].gather(1, pick)[:, 0]
    log_scale = torch.clamp(params[:, 2 * m:].gather(1, pick)[:, 0], min=config.log_scale_min)
    v = r9y9_uniform(u[:, m])
    x = mean + t * torch.exp(log_scale) * (torch.log(v) - torch.log(1.0 - v))
    return torch.clamp(x, -1.0, 1.0)


def scalar_codes(values: torch.Tensor) -> torch.Tensor:
    """Samples in [-1, 1] -> 16-bit PCM codes (int64), what `generate` returns for them."""
    return torch.round(values * PCM_SCALE).to(torch.int64)


@functools.lru_cache(maxsize=8)
def _decode_table(classes: int, device: str) -> torch.Tensor:
    return torch.from_numpy(mulaw_table(classes)).to(device)


def excitation_sample(prediction: torch.Tensor, codes: torch.Tensor,
                      classes: int) -> torch.Tensor:
    """Excitation codes [n] and predictions p [n] -> samples clamp(p + e, -1, 1) [n]."""
    e = _decode_table(classes, str(codes.device))[codes]
    return torch.clamp(prediction.to(e.device) + e, -1.0, 1.0)


def next_sample(outputs: torch.Tensor, config, temperature: torch.Tensor,
                seeds: torch.Tensor, positions: torch.Tensor,
                prediction: torch.Tensor | None = None, floor: torch.Tensor | None = None):
    """One step's outputs [n, output_channels] -> (next inputs, codes), both [n].

    Softmax models feed back the code; scalar models the unrounded sample in [-1, 1];
    excitation models (with their `prediction` [n]) the sample p + e, unrounded. `floor`
    [n] (softmax and excitation models): the voicing-shaped sampling's tail cut.
    """
    if config.lpc_excitation:
        codes = sample_codes(outputs, temperature, counter_uniform(seeds, positions), floor)
        values = excitation_sample(prediction, codes, config.classes)
        return values, scalar_codes(values)
    if config.scalar_io:
        values = sample_scalar(outputs, config, temperature, seeds, positions)
        return values, scalar_codes(values)
    codes = sample_codes(outputs, temperature, counter_uniform(seeds, positions), floor)
    return codes, codes


def codes_to_audio(codes, config):
    """A backend's codes -> float32 audio in [-1, 1] (mu-law, or 16-bit PCM codes)."""
    if config.pcm_output:
        return np.asarray(codes, dtype=np.float32) / np.float32(PCM_SCALE)
    return mulaw_decode(np.asarray(codes))
