"""The seed notebook's building blocks (its "Dialated" spelled "Dilated").

Design decisions kept from the seed: two dilated kernel-2 convolutions per layer (filter
for tanh, gate for sigmoid), no padding, two 1x1 convolutions on z (residual and skip),
and the layer input clipped to the output length before the residual add.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DilatedConv1d(nn.Conv1d):
    """Kernel-2 dilated convolution without padding: output is `dilation` samples shorter."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size=2, dilation=dilation, bias=bias)


class Conv1d1x1(nn.Conv1d):
    """Pointwise convolution (a per-sample matrix product)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False):
        super().__init__(in_channels, out_channels, kernel_size=1, bias=bias)


class ResidualLayer(nn.Module):
    """One gated residual layer, optionally conditioned locally (mel) and globally (speaker).

    `forward(x, local, speaker, pad)`: x is [B, C, T]. Without `pad` the output is
    T - dilation long (the seed's valid convolution). With `pad`, x is left-padded with
    `dilation` zero vectors so the output keeps length T: this is exactly what stepping a
    zeroed generation queue computes, and is used to prime generation queues.
    `local` is [B, M, T_out or longer] (clipped from the left like the residual input);
    `speaker` is [B, S, 1].
    """

    def __init__(self, dilation: int, residual_channels: int, skip_channels: int,
                 mel_channels: int = 0, speaker_channels: int = 0):
        super().__init__()
        self.dilation = dilation
        self.filter_conv = DilatedConv1d(residual_channels, residual_channels, dilation)
        self.gate_conv = DilatedConv1d(residual_channels, residual_channels, dilation)
        self.residual_1x1 = Conv1d1x1(residual_channels, residual_channels)
        self.skip_1x1 = Conv1d1x1(residual_channels, skip_channels)
        self.filter_local = self.gate_local = None
        self.filter_global = self.gate_global = None
        if mel_channels:
            self.filter_local = Conv1d1x1(mel_channels, residual_channels)
            self.gate_local = Conv1d1x1(mel_channels, residual_channels)
        if speaker_channels:
            self.filter_global = Conv1d1x1(speaker_channels, residual_channels)
            self.gate_global = Conv1d1x1(speaker_channels, residual_channels)

    def forward(self, x: torch.Tensor, local: torch.Tensor | None = None,
                speaker: torch.Tensor | None = None, pad: bool = False):
        conv_in = F.pad(x, (self.dilation, 0)) if pad else x
        filter_out, gate_out = self.filter_conv(conv_in), self.gate_conv(conv_in)
        length = filter_out.size(2)
        if self.filter_local is not None:
            if local is None:
                raise ValueError("this layer is locally conditioned: pass `local`")
            clipped_local = local[:, :, -length:]
            filter_out = filter_out + self.filter_local(clipped_local)
            gate_out = gate_out + self.gate_local(clipped_local)
        if self.filter_global is not None:
            if speaker is None:
                raise ValueError("this layer is globally conditioned: pass `speaker`")
            filter_out = filter_out + self.filter_global(speaker)
            gate_out = gate_out + self.gate_global(speaker)
        z = torch.tanh(filter_out) * torch.sigmoid(gate_out)
        residual_out, skip_out = self.residual_1x1(z), self.skip_1x1(z)
        clipped_inputs = x[:, :, -length:]
        return residual_out + clipped_inputs, skip_out
