"""Pre-packed weights for the fast backends (the model and checkpoint keep the seed's layout).

Per layer, filter and gate become one matrix applied to the kernel's taps, oldest first,
[x(t-(k-1)d), ..., x(t-d), x(t)] (rows: filter then gate; for the seed's k = 2 that is
[x(t-d), x(t)]); residual and skip become one matrix (rows: residual then skip) with an
optional bias. Speaker conditioning folds into a per-speaker bias, and the model's mel
standardisation folds into the local weights and the gate bias, so the backends take raw
log-mel rows exactly as the model does. Scalar-input models have `input_weight` and
`input_bias` [C] instead of an embedding (first-layer input = value * weight + bias).
Excitation models add `prediction_input` [C] (first-layer input = embedding[code] + p *
prediction_input, p the sample's linear prediction).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wavenet_core.model.wavenet import WaveNet


@dataclass
class PackedWeights:
    embedding: torch.Tensor | None      # [classes, C] (embedding input)
    gate_weight: torch.Tensor      # [L, 2G, k*C]   applied to the taps, oldest first
    gate_bias: torch.Tensor        # [L, 2G]
    out_weight: torch.Tensor       # [L, C+S, G]   residual rows, then skip rows
    local_weight: torch.Tensor | None   # [L, 2G, M]
    speaker_bias: torch.Tensor | None   # [num_speakers, L, 2G]
    head_weight: torch.Tensor      # [S, S]
    head_bias: torch.Tensor        # [S]
    logits_weight: torch.Tensor    # [output_channels, S]
    logits_bias: torch.Tensor      # [output_channels]
    out_bias: torch.Tensor | None = None      # [L, C+S] (config.out_bias)
    input_weight: torch.Tensor | None = None  # [C] (scalar input)
    input_bias: torch.Tensor | None = None    # [C]
    prediction_input: torch.Tensor | None = None  # [C] (excitation models)


def _taps(weight: torch.Tensor) -> torch.Tensor:
    """Conv weight [out, in, k] -> [out, k*in], tap 0 (the oldest input) first."""
    return torch.cat([weight[:, :, j] for j in range(weight.size(2))], 1)


@torch.no_grad()
def pack_weights(model: WaveNet) -> PackedWeights:
    gate_w, gate_b, out_w, out_b, local_w, speaker_b = [], [], [], [], [], []
    speakers = (model.speaker_embedding.weight if model.speaker_embedding is not None else None)
    for layer in model.layers:
        gate_w.append(torch.cat([_taps(layer.filter_conv.weight),
                                 _taps(layer.gate_conv.weight)], 0))
        bias = torch.cat([layer.filter_conv.bias, layer.gate_conv.bias])
        out_w.append(torch.cat([layer.residual_1x1.weight[:, :, 0],
                                layer.skip_1x1.weight[:, :, 0]], 0))
        if layer.residual_1x1.bias is not None:
            out_b.append(torch.cat([layer.residual_1x1.bias, layer.skip_1x1.bias]))
        if layer.filter_local is not None:
            # W (x - mean) / std  ==  (W / std) x  -  (W 1) mean / std
            weight = torch.cat([layer.filter_local.weight[:, :, 0],
                                layer.gate_local.weight[:, :, 0]], 0) / model.config.mel_std
            local_w.append(weight)
            bias = bias - weight.sum(1) * model.config.mel_mean
        gate_b.append(bias)
        if speakers is not None:
            proj = torch.cat([layer.filter_global.weight[:, :, 0],
                              layer.gate_global.weight[:, :, 0]], 0)     # [2G, spk]
            speaker_b.append(speakers @ proj.T)                          # [num_speakers, 2G]
    scalar = model.input_1x1
    return PackedWeights(
        embedding=None if model.embedding is None else model.embedding.weight.detach().clone(),
        gate_weight=torch.stack(gate_w),
        gate_bias=torch.stack(gate_b),
        out_weight=torch.stack(out_w),
        local_weight=torch.stack(local_w) if local_w else None,
        speaker_bias=torch.stack(speaker_b, 1) if speaker_b else None,
        head_weight=model.head_1x1.weight[:, :, 0].clone(),
        head_bias=model.head_1x1.bias.clone(),
        logits_weight=model.logits_1x1.weight[:, :, 0].clone(),
        logits_bias=model.logits_1x1.bias.clone(),
        out_bias=torch.stack(out_b) if out_b else None,
        input_weight=None if scalar is None else scalar.weight[:, 0, 0].clone(),
        input_bias=None if scalar is None else scalar.bias.clone(),
        prediction_input=(None if model.prediction_input is None
                          else model.prediction_input.detach().clone()),
    )
