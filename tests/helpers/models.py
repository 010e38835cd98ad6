"""Hypothesis strategies and helpers for tiny random WaveNets (shared by core tests)."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from tests.helpers.tiny_models import random_inputs, random_model
from wavenet_core.model.config import MelConfig, WaveNetConfig

__all__ = ["configs", "excitation_configs", "random_inputs", "random_model", "shaping_configs",
           "variant_options"]


@st.composite
def configs(draw, local=None, speakers=None, max_layers=4, options=False):
    """Random small configs: arbitrary (non power-of-two) dilations, 1-3 stacks, odd widths.

    With `options`, also the non-seed options (kernel size, z width, biases, residual scale,
    scalar input with mixture / Gaussian output, a learned upsampler), each drawn at random.
    """
    layers = draw(st.integers(1, max_layers))
    cycle = tuple(draw(st.lists(st.integers(1, 7), min_size=layers, max_size=layers)))
    use_local = draw(st.booleans()) if local is None else local
    use_speakers = draw(st.booleans()) if speakers is None else speakers
    extra = draw(variant_options(use_local)) if options else {}
    standardise = {} if extra.get("upsample_scales") else dict(
        mel_mean=draw(st.sampled_from([0.0, -5.0, 1.5])),
        mel_std=draw(st.sampled_from([1.0, 3.0, 0.5])))
    return WaveNetConfig(
        layers_per_stack=layers, stacks=draw(st.integers(1, 3)), dilation_cycle=cycle,
        residual_channels=draw(st.integers(1, 9)), skip_channels=draw(st.integers(1, 11)),
        classes=draw(st.sampled_from([256, 17])),
        mel_channels=draw(st.integers(1, 5)) if use_local else 0,
        num_speakers=draw(st.integers(1, 4)) if use_speakers else 0,
        speaker_channels=draw(st.integers(1, 5)),
        mel=MelConfig(n_mels=5, hop_length=math.prod(extra.get("upsample_scales", ())) or 256),
        **standardise, **extra,
    )


@st.composite
def variant_options(draw, local: bool):
    """The WaveNetConfig fields other WaveNets (r9y9's) use, drawn independently."""
    output = draw(st.sampled_from(["softmax", "mol", "gaussian"]))
    extra = dict(kernel_size=draw(st.integers(2, 4)), gate_channels=draw(st.integers(0, 9)),
                 out_bias=draw(st.booleans()),
                 residual_scale=draw(st.sampled_from([1.0, 0.5 ** 0.5])), output=output,
                 input_kind="embedding" if output == "softmax" else "scalar",
                 mixtures=draw(st.integers(1, 4)) if output == "mol" else 0,
                 log_scale_min=draw(st.sampled_from([-7.0, -2.0])))
    if local and draw(st.booleans()):
        extra["upsample_scales"] = tuple(draw(st.lists(st.integers(1, 3), min_size=1,
                                                       max_size=2)))
        extra["upsample_freq_kernel"] = draw(st.sampled_from([1, 3, 5]))
    return extra


@st.composite
def excitation_configs(draw, max_layers=4):
    """`configs(local=True, options=True)` as excitation models (softmax output, which the
    option needs) of order 1 .. 20."""
    import dataclasses

    base = draw(configs(local=True, max_layers=max_layers, options=True))
    return dataclasses.replace(base, input_kind="embedding", output="softmax", mixtures=0,
                               mel=dataclasses.replace(base.mel, n_mels=base.mel_channels),
                               excitation="lpc", lpc_order=draw(st.integers(1, 20)))


@st.composite
def shaping_configs(draw, max_layers=3):
    """Tiny softmax models, plain or excitation, with voicing-shaped sampling on: a mel of
    at least 3 bands (so voicing can be told, tests/helpers/voicing.py) and a short hop
    (a short stream spans several frames)."""
    import dataclasses

    if draw(st.booleans()):
        base = draw(excitation_configs(max_layers=max_layers))
    else:
        base = draw(configs(local=True, max_layers=max_layers, options=True))
        base = dataclasses.replace(base, input_kind="embedding", output="softmax",
                                   mixtures=0)
    n_mels = max(3, base.mel_channels)
    hop = base.mel.hop_length if base.upsample_scales else draw(st.sampled_from([4, 8, 16]))
    temperature, floor = draw(st.sampled_from([(0.5, 0.0), (1.0, 0.05), (0.6, 0.1),
                                               (0.0, 0.02), (0.3, 0.01)]))
    return dataclasses.replace(base, mel_channels=n_mels,
                               mel=dataclasses.replace(base.mel, n_mels=n_mels,
                                                       hop_length=hop),
                               voiced_temperature=temperature, voiced_floor=floor)
