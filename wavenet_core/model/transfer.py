"""Start a training run from another checkpoint's weights, so compute already spent counts.

Why: the bundled vocoder is speaker-conditioned; the universal vocoder has no speaker
input. Dropping the speaker embedding loses nothing it can still use if the speaker's
contribution is replaced by the average speaker's: in every layer the speaker term is
``W_global @ e_speaker``, a per-channel constant, so ``W_global @ mean(e)`` folds exactly
into the filter and gate biases. The resulting model equals the old one conditioned on the
mean speaker embedding, and training continues from there.
"""

from __future__ import annotations

import dataclasses

import torch

from wavenet_core.model.checkpoint import load_checkpoint
from wavenet_core.model.wavenet import WaveNet


def without_speakers(model: WaveNet) -> WaveNet:
    """A universal copy of `model`: the mean speaker folded into the layer biases."""
    if not model.config.global_conditioning:
        return model
    config = dataclasses.replace(model.config, num_speakers=0)
    universal = WaveNet(config)
    state = {k: v for k, v in model.state_dict().items()
             if not k.startswith("speaker_embedding") and "_global" not in k}
    mean_speaker = model.speaker_embedding.weight.detach().mean(0)
    for i, layer in enumerate(model.layers):
        for kind in ("filter", "gate"):
            weight = getattr(layer, f"{kind}_global").weight.detach()[:, :, 0]
            state[f"layers.{i}.{kind}_conv.bias"] = (
                state[f"layers.{i}.{kind}_conv.bias"] + weight @ mean_speaker)
    universal.load_state_dict(state)
    return universal


def starting_point(path, speakers: int) -> WaveNet:
    """The checkpoint at `path`, made universal when `speakers` is 0 (see module docstring).

    A speaker-conditioned start must know the same number of speakers.
    """
    with torch.no_grad():
        model = load_checkpoint(path, "cpu")
        if not speakers:
            return without_speakers(model)
    if model.config.num_speakers != speakers:
        raise ValueError(f"{path} knows {model.config.num_speakers} speakers, the corpus "
                         f"{speakers}: start a speaker-conditioned run from scratch instead")
    return model


def with_cond_net(model: WaveNet, layers: int, kernel: int = 3, seed: int = 0) -> WaveNet:
    """A copy of `model` with a fresh conditioning network (wavenet_core/model/condnet.py) of
    `layers` blocks, drawn with `seed`: its output convs start at zero, so the copy computes
    exactly what `model` does, and fine-tuning starts from where `model` was."""
    if model.config.cond_layers:
        raise ValueError(f"the model already has a conditioning network "
                         f"(cond_layers={model.config.cond_layers})")
    torch.manual_seed(seed)
    changed = WaveNet(dataclasses.replace(model.config, cond_layers=layers, cond_kernel=kernel))
    missing, unexpected = changed.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("cond_net.") for k in missing)
    return changed
