"""Pre-packed weights for the fast backends (the model and checkpoint keep the seed's layout).

Per layer, filter and gate become one matrix applied to [x(t-d), x(t)] (rows: filter then
gate; columns: the kernel's tap on x(t-d), then its tap on x(t)); residual and skip become
one matrix (rows: residual then skip). Speaker conditioning folds into a per-speaker bias,
and the model's mel standardisation folds into the local weights and the gate bias, so the
backends take raw log-mel rows exactly as the model does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wavenet_core.model import WaveNet


@dataclass
class PackedWeights:
    embedding: torch.Tensor        # [classes, C]
    gate_weight: torch.Tensor      # [L, 2C, 2C]   applied to cat(x(t-d), x(t))
    gate_bias: torch.Tensor        # [L, 2C]
    out_weight: torch.Tensor       # [L, C+S, C]   residual rows, then skip rows
    local_weight: torch.Tensor | None   # [L, 2C, M]
    speaker_bias: torch.Tensor | None   # [num_speakers, L, 2C]
    head_weight: torch.Tensor      # [S, S]
    head_bias: torch.Tensor        # [S]
    logits_weight: torch.Tensor    # [classes, S]
    logits_bias: torch.Tensor      # [classes]


@torch.no_grad()
def pack_weights(model: WaveNet) -> PackedWeights:
    gate_w, gate_b, out_w, local_w, speaker_b = [], [], [], [], []
    speakers = (model.speaker_embedding.weight if model.speaker_embedding is not None else None)
    for layer in model.layers:
        f, g = layer.filter_conv.weight, layer.gate_conv.weight          # [C, C, 2]
        gate_w.append(torch.cat([torch.cat([f[:, :, 0], f[:, :, 1]], 1),
                                 torch.cat([g[:, :, 0], g[:, :, 1]], 1)], 0))
        bias = torch.cat([layer.filter_conv.bias, layer.gate_conv.bias])
        out_w.append(torch.cat([layer.residual_1x1.weight[:, :, 0],
                                layer.skip_1x1.weight[:, :, 0]], 0))
        if layer.filter_local is not None:
            # W (x - mean) / std  ==  (W / std) x  -  (W 1) mean / std
            weight = torch.cat([layer.filter_local.weight[:, :, 0],
                                layer.gate_local.weight[:, :, 0]], 0) / model.config.mel_std
            local_w.append(weight)
            bias = bias - weight.sum(1) * model.config.mel_mean
        gate_b.append(bias)
        if speakers is not None:
            proj = torch.cat([layer.filter_global.weight[:, :, 0],
                              layer.gate_global.weight[:, :, 0]], 0)     # [2C, spk]
            speaker_b.append(speakers @ proj.T)                          # [num_speakers, 2C]
    return PackedWeights(
        embedding=model.embedding.weight.detach().clone(),
        gate_weight=torch.stack(gate_w),
        gate_bias=torch.stack(gate_b),
        out_weight=torch.stack(out_w),
        local_weight=torch.stack(local_w) if local_w else None,
        speaker_bias=torch.stack(speaker_b, 1) if speaker_b else None,
        head_weight=model.head_1x1.weight[:, :, 0].clone(),
        head_bias=model.head_1x1.bias.clone(),
        logits_weight=model.logits_1x1.weight[:, :, 0].clone(),
        logits_bias=model.logits_1x1.bias.clone(),
    )
