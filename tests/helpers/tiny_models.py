"""Tiny random WaveNets without Hypothesis (the GPU check machine has none); the
strategies live in models.py, which re-exports these."""

from __future__ import annotations

import torch

from wavenet_core.model.config import MelConfig, WaveNetConfig
from wavenet_core.model.wavenet import WaveNet

# The training tests' model: mel and speakers, sized for conftest's `tiny_corpus`.
TINY_TRAINING = WaveNetConfig(layers_per_stack=4, stacks=1, residual_channels=8,
                              skip_channels=16, mel_channels=20, num_speakers=2,
                              speaker_channels=4,
                              mel=MelConfig(n_mels=20, n_fft=256, win_length=256,
                                            hop_length=64))


def random_model(config: WaveNetConfig, seed: int = 0) -> WaveNet:
    """A model with weights large enough that errors would show (default init is tiny)."""
    torch.manual_seed(seed)
    model = WaveNet(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)
    return model


def random_inputs(config: WaveNetConfig, length: int, seed: int = 0):
    """codes [1, length] (samples in [-1, 1] for scalar input), local [1, M, length] or
    None, speaker [1] or None."""
    g = torch.Generator().manual_seed(seed)
    codes = (torch.rand(1, length, generator=g) * 2 - 1 if config.scalar_io
             else torch.randint(0, config.classes, (1, length), generator=g))
    local = (torch.randn(1, config.mel_channels, length, generator=g)
             if config.local_conditioning else None)
    speaker = (torch.randint(0, config.num_speakers, (1,), generator=g)
               if config.global_conditioning else None)
    return codes, local, speaker


def excitation_inputs(config: WaveNetConfig, length: int, seed: int = 0) -> dict:
    """Teacher forcing an excitation model: samples `x` [1, length] in [-1, 1], their codes,
    coefficient rows `lpc` [1, length, order] (row t predicts x[t+1]: the row of the sample
    the input predicts, like `local`), the forward's `prediction` [1, length] (of x[t+1]
    from x[..t], silence before), `local` and `speaker`."""
    import numpy as np

    from wavenet_core.audio.lpc import prediction
    from wavenet_core.audio.mulaw import mulaw_encode_exact

    g = torch.Generator().manual_seed(seed + 1000)
    x = (torch.rand(1, length, generator=g) * 2 - 1) * 0.8
    lpc = torch.randn(1, length, config.lpc_order, generator=g) * 0.3
    _, local, speaker = random_inputs(config, length, seed)
    samples = np.concatenate([x[0].numpy(), [0.0]]).astype(np.float32)
    rows = np.concatenate([np.zeros((1, config.lpc_order), np.float32), lpc[0].numpy()])
    return dict(x=x, codes=mulaw_encode_exact(x, config.classes), lpc=lpc, local=local,
                speaker=speaker, prediction=torch.from_numpy(prediction(samples, rows)[1:])[None])
