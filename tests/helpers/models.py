"""Hypothesis strategies and helpers for tiny random WaveNets (shared by core tests)."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.helpers.tiny_models import random_inputs, random_model
from wavenet_core.config import MelConfig, WaveNetConfig

__all__ = ["configs", "random_inputs", "random_model"]


@st.composite
def configs(draw, local=None, speakers=None, max_layers=4):
    """Random small configs: arbitrary (non power-of-two) dilations, 1-3 stacks, odd widths."""
    layers = draw(st.integers(1, max_layers))
    cycle = tuple(draw(st.lists(st.integers(1, 7), min_size=layers, max_size=layers)))
    use_local = draw(st.booleans()) if local is None else local
    use_speakers = draw(st.booleans()) if speakers is None else speakers
    return WaveNetConfig(
        layers_per_stack=layers, stacks=draw(st.integers(1, 3)), dilation_cycle=cycle,
        residual_channels=draw(st.integers(1, 9)), skip_channels=draw(st.integers(1, 11)),
        classes=draw(st.sampled_from([256, 17])),
        mel_channels=draw(st.integers(1, 5)) if use_local else 0,
        num_speakers=draw(st.integers(1, 4)) if use_speakers else 0,
        speaker_channels=draw(st.integers(1, 5)),
        mel_mean=draw(st.sampled_from([0.0, -5.0, 1.5])),
        mel_std=draw(st.sampled_from([1.0, 3.0, 0.5])),
        mel=MelConfig(n_mels=5),
    )
