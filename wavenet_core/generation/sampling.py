"""Sampling from logits with a per-stream, counter-based RNG.

A stream's n-th draw is a pure function of (seed, n): `counter_uniform` hashes the two
with 32-bit integer mixing (Wellons' lowbias32), so a stream's samples never depend on
which other streams share the batch, on slot numbers or on chunk sizes. Every backend
uses these exact integer operations, so the uniforms are bitwise identical everywhere.

Temperature 0 is greedy (argmax); otherwise inverse-CDF sampling from softmax(logits/T).
"""

from __future__ import annotations

import torch

MASK32 = 0xFFFFFFFF
SEED_SALT = 0x9E3779B9
MIX_1 = 0x7FEB352D
MIX_2 = 0x846CA68B
MAX_SEED = MASK32


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
                 uniforms: torch.Tensor) -> torch.Tensor:
    """logits [n, classes], temperature [n], uniforms [n] -> codes [n] int64."""
    greedy = logits.argmax(dim=1)
    safe_t = torch.where(temperature > 0, temperature, torch.ones_like(temperature))
    scaled = logits / safe_t.unsqueeze(1)
    probs = torch.exp(scaled - scaled.max(dim=1, keepdim=True).values)
    cdf = torch.cumsum(probs, dim=1)
    target = (uniforms * cdf[:, -1]).unsqueeze(1)
    drawn = (cdf <= target).sum(dim=1).clamp_(max=logits.size(1) - 1)
    return torch.where(temperature > 0, drawn, greedy)
