"""The seed notebook's building blocks: the dilated residual layer and its convolutions.

Design decisions kept from the seed: two dilated kernel-2 convolutions per layer (filter
for tanh, gate for sigmoid), no padding, two 1x1 convolutions on z (residual and skip),
and the layer input clipped to the output length before the residual add. Other WaveNets
(r9y9's) need a wider kernel, a z width of its own, residual/skip biases and a residual
scale; those are options whose defaults are the seed's (config.py).

The parameters keep the seed's Conv1d layout (that is the checkpoint format), but the
forward runs channels-last as matrix products: a kernel-2 dilated convolution is
``W_past x[t-d] + W_now x[t] + b``, and filter and gate share one product. On a CPU this
is the same arithmetic as the convolutions, several times faster than torch's dilated
conv1d for these widths, and it is what makes bfloat16 autocast training pay off.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DilatedConv1d(nn.Conv1d):
    """Dilated convolution without padding: (kernel_size - 1) * dilation samples shorter."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int, bias: bool = True,
                 kernel_size: int = 2):
        super().__init__(in_channels, out_channels, kernel_size=kernel_size, dilation=dilation,
                         bias=bias)


class Conv1d1x1(nn.Conv1d):
    """Pointwise convolution (a per-sample matrix product)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False):
        super().__init__(in_channels, out_channels, kernel_size=1, bias=bias)


def pointwise(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """A 1x1 convolution applied channels-last: [B, T, in] -> [B, T, out]."""
    return F.linear(x, conv.weight[:, :, 0], conv.bias)


class ResidualLayer(nn.Module):
    """One gated residual layer, optionally conditioned locally (mel) and globally (speaker).

    `forward(x, local, speaker, pad)`, all channels-last: x is [B, T, C]. Without `pad`
    the output is T - (k-1)*dilation long (the seed's valid convolution). With `pad`, x is
    left-padded with (k-1)*dilation zero vectors so the output keeps length T: this is exactly
    what stepping a zeroed generation queue computes, and is used to prime generation queues.
    `local` is [B, T_out or longer, M] (clipped from the left like the residual input);
    `speaker` is [B, S]. Kernel tap j sees x(t - (k-1-j)*d).
    """

    def __init__(self, dilation: int, residual_channels: int, skip_channels: int,
                 mel_channels: int = 0, speaker_channels: int = 0, kernel_size: int = 2,
                 gate_channels: int = 0, out_bias: bool = False, residual_scale: float = 1.0):
        super().__init__()
        self.dilation, self.kernel_size, self.residual_scale = dilation, kernel_size, residual_scale
        width = gate_channels or residual_channels
        self.filter_conv = DilatedConv1d(residual_channels, width, dilation, True, kernel_size)
        self.gate_conv = DilatedConv1d(residual_channels, width, dilation, True, kernel_size)
        self.residual_1x1 = Conv1d1x1(width, residual_channels, bias=out_bias)
        self.skip_1x1 = Conv1d1x1(width, skip_channels, bias=out_bias)
        self.filter_local = self.gate_local = None
        self.filter_global = self.gate_global = None
        if mel_channels:
            self.filter_local = Conv1d1x1(mel_channels, width)
            self.gate_local = Conv1d1x1(mel_channels, width)
        if speaker_channels:
            self.filter_global = Conv1d1x1(speaker_channels, width)
            self.gate_global = Conv1d1x1(speaker_channels, width)

    def forward(self, x: torch.Tensor, local: torch.Tensor | None = None,
                speaker: torch.Tensor | None = None, pad: bool = False):
        span = (self.kernel_size - 1) * self.dilation
        d, channels = self.dilation, self.filter_conv.out_channels
        conv_in = F.pad(x, (0, 0, span, 0)) if pad else x
        length = conv_in.size(1) - span
        f, g = self.filter_conv.weight, self.gate_conv.weight
        both = torch.cat([self.filter_conv.bias, self.gate_conv.bias])
        last = self.kernel_size - 1
        pre = F.linear(conv_in[:, span:], torch.cat([f[:, :, last], g[:, :, last]]), both)
        for j in range(last):
            pre = pre + F.linear(conv_in[:, j * d:j * d + length],
                                 torch.cat([f[:, :, j], g[:, :, j]]))
        if self.filter_local is not None:
            if local is None:
                raise ValueError("this layer is locally conditioned: pass `local`")
            weight = torch.cat([self.filter_local.weight, self.gate_local.weight])[:, :, 0]
            pre = pre + F.linear(local[:, -length:], weight)
        if self.filter_global is not None:
            if speaker is None:
                raise ValueError("this layer is globally conditioned: pass `speaker`")
            weight = torch.cat([self.filter_global.weight, self.gate_global.weight])[:, :, 0]
            pre = pre + F.linear(speaker, weight).unsqueeze(1)
        z = torch.tanh(pre[..., :channels]) * torch.sigmoid(pre[..., channels:])
        residual_out, skip_out = pointwise(z, self.residual_1x1), pointwise(z, self.skip_1x1)
        out = residual_out + x[:, -length:]
        return (out if self.residual_scale == 1.0 else out * self.residual_scale), skip_out
