"""Mel frames -> per-sample conditioning rows, by linear interpolation or a learned upsampler.

The seed interpolates linearly between frames (`mel.mel_window`). r9y9's vocoders learn
the upsampling instead: per scale s a transposed 2-D convolution with kernel
(freq_kernel, s) and stride (1, s), then a ReLU. Its time kernel equals its stride, so
sample t depends on frame t // hop alone (hop = product of the scales): a chunk needs
only its own frames, and its rows equal the whole mel's rows bitwise because every output
element is the same chain of multiply-adds (written out here, not left to a convolution
routine whose order may depend on the input's length).

Stage i computes, for mel channel m and sub-position j of frame f,
`out[m, f*s + j] = relu(bias + sum_q weight[q, j] * in[m + p - q, f])`, p = (freq_kernel-1)/2,
channels outside 0..M-1 read as zero (torch.nn.ConvTranspose2d with padding (p, 0)).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from wavenet_core.audio.mel import mel_window


class UpsampleStage(nn.Module):
    def __init__(self, scale: int, freq_kernel: int):
        super().__init__()
        self.weight = nn.Parameter(torch.full((freq_kernel, scale), 1.0 / freq_kernel))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, M, F] -> [B, M, F * scale]."""
        kernel, scale = self.weight.shape
        p = (kernel - 1) // 2
        channels = x.size(1)
        padded = torch.nn.functional.pad(x, (0, 0, p, p))
        acc = self.bias.expand(*x.shape, scale)
        for q in range(kernel):
            # in[m + p - q] sits at padded row m + 2p - q
            rows = padded[:, 2 * p - q:2 * p - q + channels].unsqueeze(-1)
            acc = acc + self.weight[q] * rows
        return torch.relu(acc).flatten(2)


class LearnedUpsampler(nn.Module):
    def __init__(self, scales: tuple[int, ...], freq_kernel: int):
        super().__init__()
        self.stages = nn.ModuleList(UpsampleStage(s, freq_kernel) for s in scales)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames [B, M, F] -> rows [B, M, F * hop]."""
        for stage in self.stages:
            frames = stage(frames)
        return frames


@torch.no_grad()
def conditioning_window(upsampler: LearnedUpsampler | None, mel, hop: int, start: int,
                        count: int) -> np.ndarray:
    """Per-sample conditioning [count, M] for samples start .. start+count-1 of a stream.

    Without a learned upsampler this is `mel_window` (linear interpolation). With one, it
    runs on the frames start // hop .. (start+count-1) // hop only (past the end: the last
    frame, as `mel_window` clamps), so chunked streaming gives the whole mel's rows.
    """
    if upsampler is None:
        return mel_window(mel, hop, start, count)
    frames = np.asarray(mel, dtype=np.float32)
    if frames.ndim != 2 or frames.shape[0] < 1 or start < 0 or count < 0:
        raise ValueError(f"need mel [frames >= 1, n_mels], start >= 0, count >= 0: got shape "
                         f"{frames.shape}, {start}, {count}")
    if count == 0:
        return np.zeros((0, frames.shape[1]), np.float32)
    first, last = start // hop, (start + count - 1) // hop
    index = np.minimum(np.arange(first, last + 1), frames.shape[0] - 1)
    device = next(upsampler.parameters()).device
    window = torch.as_tensor(frames[index].T[None], device=device)
    rows = upsampler(window)[0, :, start - first * hop:start - first * hop + count]
    return rows.T.cpu().numpy()
