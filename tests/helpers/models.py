"""Hypothesis strategies and helpers for tiny random WaveNets (shared by core tests)."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from wavenet_core.config import MelConfig, WaveNetConfig
from wavenet_core.model import WaveNet


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


def random_model(config: WaveNetConfig, seed: int = 0) -> WaveNet:
    """A model with weights large enough that errors would show (default init is tiny)."""
    torch.manual_seed(seed)
    model = WaveNet(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)
    return model


def random_inputs(config: WaveNetConfig, length: int, seed: int = 0):
    """codes [1, length], local [1, M, length] or None, speaker [1] or None."""
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, config.classes, (1, length), generator=g)
    local = (torch.randn(1, config.mel_channels, length, generator=g)
             if config.local_conditioning else None)
    speaker = (torch.randint(0, config.num_speakers, (1,), generator=g)
               if config.global_conditioning else None)
    return codes, local, speaker
