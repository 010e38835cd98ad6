"""The excitation comparison's held-out NLL on one grid for both model kinds
(benchmarks/excitation_compare.py), and its pairing helpers."""

from __future__ import annotations

import argparse
import dataclasses
import math

import numpy as np
import pytest
import torch

from tests.helpers.packaging import benchmark_module
from tests.training.test_train import TINY
from wavenet_core.audio.mulaw import mulaw_thresholds
from wavenet_core.model.wavenet import WaveNet


def _compare():
    return benchmark_module("excitation_compare")


def test_a_uniform_density_over_the_samples_costs_16_bits_on_every_class():
    """Class c with probability (its bin's width / 2) is the uniform density on [-1, 1]:
    every 16-bit level then has probability 2^-16, whatever the class of the target."""
    ec = _compare()
    edges = np.concatenate([[-1.0], mulaw_thresholds().astype(np.float64), [1.0]])
    native = -np.log2(np.diff(edges) / 2.0)
    for c in (0, 100, 127, 128, 200, 255):
        targets = np.array([c])
        assert math.isclose(native[c] + ec.grid_offset(targets, 256), 16.0, abs_tol=1e-9)


def test_held_out_nll_is_finite_for_plain_and_excitation_models():
    ec = _compare()
    rng = np.random.default_rng(0)
    t = np.arange(6000) / 16000
    audio = (0.5 * np.sin(2 * np.pi * 200 * t) + 0.01 * rng.standard_normal(6000))
    audio = audio.astype(np.float32)
    for config in (dataclasses.replace(TINY, num_speakers=0),
                   dataclasses.replace(TINY, num_speakers=0, excitation="lpc", lpc_order=8)):
        torch.manual_seed(0)
        out = ec.held_out_nll(WaveNet(config).eval(), audio, 1000)
        assert out["predicted"] == 6000          # 6 whole windows of 1000
        assert np.isfinite(out["nll_native"]) and np.isfinite(out["nll_grid16"])
        assert out["outside"] == 0


def test_pairs_and_standard_errors():
    ec = _compare()
    assert ec.default_pairs(["exc", "plain"], ["unshaped", "shaped"]) == [
        ("exc/unshaped", "plain/unshaped"), ("exc/shaped", "plain/shaped"),
        ("exc/shaped", "exc/unshaped"), ("plain/shaped", "plain/unshaped"),
        ("exc/unshaped", "griffin_lim")]
    mean, se, n = ec.mean_se([1.0, 3.0, float("nan")])
    assert (mean, n) == (2.0, 2) and math.isclose(se, 1.0)


def test_sampling_modes_parse_to_a_temperature_or_voiced_fields():
    ec = _compare()
    assert ec.sampling_settings("unshaped") == (1.0, {})
    assert ec.sampling_settings("shaped") == (None, ec.SHAPED)
    assert ec.sampling_settings("t0.9") == (0.9, {})
    assert ec.sampling_settings("shaped-0.8-0.001") == (
        None, {"voiced_temperature": 0.8, "voiced_floor": 0.001})
    for bad in ("tepid", "shaped-0.8", "loud"):
        with pytest.raises(argparse.ArgumentTypeError, match=bad):
            ec.sampling_settings(bad)
