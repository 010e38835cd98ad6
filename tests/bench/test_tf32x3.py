"""The 3xTF32 emulation (wavenet_core/bench/tf32x3.py): TF32 rounding as cvt.rna does it,
the hi/lo split, a dot within a bound the format gives, and a config-B-sized forward
within 1e-5 (relative to the step's largest logit) of the float32 one, where plain TF32
is not."""

from __future__ import annotations

import torch

from tests.helpers.tiny_models import random_model
from wavenet_core.bench.tf32x3 import forward_errors, split, tf32, tf32_matmul, tf32x3_matmul
from wavenet_core.generation.packing import pack_weights
from wavenet_core.model.config import CONFIG_B


def test_tf32_rounds_to_nearest_ties_away_and_truncates():
    ulp = 2.0 ** -10                     # TF32 keeps 10 mantissa bits
    x = torch.tensor([1 + ulp / 2, -(1 + ulp / 2), 1 + ulp / 2 - 2.0 ** -23, 1 + 1.5 * ulp,
                      3.0], dtype=torch.float32)
    assert tf32(x).tolist() == [1 + ulp, -(1 + ulp), 1.0, 1 + 2 * ulp, 3.0]
    assert tf32(x, "trunc").tolist() == [1.0, -1.0, 1.0, 1 + ulp, 3.0]


def test_split_is_exact_and_hi_is_tf32():
    x = torch.randn(4096, generator=torch.Generator().manual_seed(0)) * 3
    hi, _ = split(x)
    assert torch.equal(hi.view(torch.int32) & 0x1FFF, torch.zeros_like(x, dtype=torch.int32))
    exact_lo = x - hi                                   # exact in float32
    assert torch.equal(hi.double() + exact_lo.double(), x.double())
    # lo is at most half a TF32 ulp of x: 2^-11 |x| (relative to hi's exponent)
    assert (exact_lo.abs() <= x.abs() * 2.0 ** -11 * (1 + 2.0 ** -10)).all()


def test_tf32x3_dot_within_the_formats_bound():
    """|error| <= (K 2^-24 + 3 2^-21) sum |a||b| elementwise: float32 accumulation plus
    hi*lo, lo*hi with lo read to 10 bits and the missing lo*lo. Plain TF32 (2^-10) is far
    outside it."""
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(16, 128, generator=g), torch.randn(128, 128, generator=g) * 0.1
    exact = a.double() @ b.double()
    bound = (128 * 2.0 ** -24 + 3 * 2.0 ** -21) * (a.double().abs() @ b.double().abs())
    for lo in ("trunc", "rna"):
        assert ((tf32x3_matmul(a, b, lo).double() - exact).abs() <= bound).all()
    assert ((tf32_matmul(a, b).double() - exact).abs() > bound).any()


def test_config_b_forward_tf32x3_within_1e5_of_fp32():
    model = random_model(CONFIG_B, seed=2)
    codes = torch.randint(0, CONFIG_B.classes, (1, 600), generator=torch.Generator().manual_seed(3))
    e = forward_errors(pack_weights(model), CONFIG_B.dilations, codes, steps=300)
    for name in ("tf32x3, lo truncated", "tf32x3, lo rounded"):
        assert e[name]["rel"] < 1e-5, (name, e[name])
        # as close to float64 as float32 itself, within a factor 4
        assert e[name]["rel64"] < 4 * e["fp32 (ieee)"]["rel64"] + 1e-7, (name, e)
    assert e["tf32"]["rel"] > 1e-4 and e["fp16"]["rel"] > 1e-4
