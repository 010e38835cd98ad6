"""Random r9y9 wavenet_vocoder models, built with their own code, for the oracle tests and
the bench's side-by-side rows. Needs the `wavenet-vocoder` package (dev extra)."""

from __future__ import annotations

import torch

LJSPEECH_MOL = dict(out_channels=30, layers=24, stacks=4, residual_channels=512,
                    gate_channels=512, skip_out_channels=256, kernel_size=3, cin_channels=80,
                    upsample_conditional_features=True, upsample_scales=[4, 4, 4, 4],
                    freq_axis_kernel_size=3, scalar_input=True)
"""r9y9's mixture-of-logistics LJSpeech preset (10 mixtures, 80 mels, hop 256)."""


@torch.no_grad()
def random_r9y9(seed: int = 0, scale: float = 0.5, **kwargs):
    """`wavenet_vocoder.WaveNet(**kwargs)` in eval mode with every parameter random: their
    init leaves biases at 0, weight-norm gains at |v| and the upsampler flat, which would
    hide a wrong fold of any of them."""
    import warnings

    from wavenet_vocoder import WaveNet

    torch.manual_seed(seed)
    with warnings.catch_warnings():      # torch.nn.utils.weight_norm is deprecated
        warnings.simplefilter("ignore", FutureWarning)
        model = WaveNet(**kwargs).eval()
    for name, p in model.named_parameters():
        p.copy_(torch.randn_like(p) * scale)
        if name.endswith("weight_g"):
            p.abs_().add_(0.5)
    return model


def r9y9_hparams(model, output_distribution: str | None = None,
                 log_scale_min: float = -7.0) -> dict:
    """The hparams JSON (their preset keys) that says what shapes cannot: stacks, legacy."""
    layers = len(model.conv_layers)
    dilations = [layer.conv.dilation[0] for layer in model.conv_layers]
    stacks = layers // (dilations.index(max(dilations)) + 1)
    hp = {"stacks": stacks, "legacy": model.legacy, "log_scale_min": log_scale_min}
    if output_distribution:
        hp["output_distribution"] = output_distribution
    return hp
