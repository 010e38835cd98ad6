"""A conditioning network over the mel frames, with lookahead, before upsampling.

`cond_layers` blocks, each `x + out_1x1(tanh(conv(x)))` over the *standardised* frames
[F, M] -> [F, M] (same shape, same channels). `conv` has `cond_kernel` taps reading frames
f - (cond_kernel - 2) .. f + 1: one frame of lookahead per block, so frame f of the output
depends on frames f - L*(cond_kernel-2) .. f + L (L = `cond_layers`) and no others.
`out_1x1` is zero-initialised, so a freshly added network is exactly the identity
(a trained checkpoint fine-tunes from where it was).

Frame edges, one rule everywhere (training windows, offline generation): the mel is
extended by repeating its first frame `left_context` times and its last frame `lookahead`
times, and the convolutions run without padding. So the conditioned frame f of a whole mel
is a function of the clamped frames max(0, min(F-1, f+i)), i = -left_context .. lookahead.

The network returns frames in the caller's raw log-mel units: raw + mel_std * (y - x) where
x is the standardised input and y the network's output, so at initialisation (y - x == 0)
the conditioned mel equals the raw mel bitwise, and everything downstream (standardisation
inside the model, linear interpolation or the learned upsampler, every backend's per-frame
projection) is unchanged: the backends simply receive conditioned frames.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from wavenet_core.audio.mel import frames_needed, interpolation
from wavenet_core.model.config import WaveNetConfig


class CondBlock(nn.Module):
    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel)
        self.out = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, M, n] -> [B, M, n - (kernel - 1)]: output i is centred on input i + kernel-2."""
        kernel = self.conv.kernel_size[0]
        keep = x[:, :, kernel - 2:x.size(2) - 1]
        return keep + self.out(torch.tanh(self.conv(x)))


class ConditioningNetwork(nn.Module):
    def __init__(self, config: WaveNetConfig):
        super().__init__()
        self.blocks = nn.ModuleList(CondBlock(config.mel_channels, config.cond_kernel)
                                    for _ in range(config.cond_layers))
        self.lookahead = config.cond_lookahead          # frames after f that frame f reads
        self.left_context = config.cond_left_context    # frames before f that frame f reads
        self.mel_mean, self.mel_std = float(config.mel_mean), float(config.mel_std)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Raw log-mel frames [B, n, M] -> conditioned raw frames
        [B, n - left_context - lookahead, M] (no padding: output i is input i + left_context)."""
        x = (frames - self.mel_mean) / self.mel_std
        x = x.transpose(1, 2)
        y = x
        for block in self.blocks:
            y = block(y)
        start = self.left_context
        centre = x[:, :, start:start + y.size(2)]
        raw = frames[:, start:start + y.size(2)]
        return raw + (y - centre).transpose(1, 2) * self.mel_std

    def condition_mel(self, mel) -> np.ndarray:
        """A whole raw log-mel [F, M] -> the conditioned one [F, M] (float32 numpy)."""
        mel = np.asarray(mel, dtype=np.float32)
        return self.condition_frames(mel, 0, len(mel))

    @torch.no_grad()
    def condition_frames(self, mel, first: int, count: int,
                         cache: dict[int, np.ndarray] | None = None) -> np.ndarray:
        """Conditioned frames min(first + i, F-1), i = 0 .. count-1, of the raw log-mel
        `mel` [F, M] (F the frames known so far), each computed alone from its own
        left_context + 1 + lookahead raw frames (edge rule: indices clamped to 0 .. F-1).

        One frame at a time, always the same shapes, so a frame's value never depends on
        which window or chunk asked for it: a mel streamed in gives bitwise the frames of
        the mel sent whole. A frame whose lookahead is not all known yet (f + lookahead
        > F - 1 while more frames may come) is provisional: callers only use frames whose
        lookahead has arrived (server/engine/mel_feed.py holds back `lookahead` frames).
        `cache` (one stream's, kept between calls) keeps the final frames, those whose
        lookahead is all known, so later calls do not compute them again.
        """
        mel = np.asarray(mel, dtype=np.float32)
        if mel.ndim != 2 or mel.shape[0] < 1 or first < 0 or count < 0:
            raise ValueError(f"need mel [frames >= 1, n_mels], first >= 0, count >= 0: got "
                             f"shape {mel.shape}, {first}, {count}")
        last = len(mel) - 1
        device = next(self.parameters()).device
        frames = np.minimum(first + np.arange(count), last)
        out = np.empty((count, mel.shape[1]), np.float32)
        final = {} if cache is None else cache
        provisional: dict[int, np.ndarray] = {}
        span = np.arange(-self.left_context, self.lookahead + 1)
        for i, f in enumerate(frames):
            value = final.get(f, provisional.get(f))
            if value is None:
                window = torch.as_tensor(mel[np.clip(f + span, 0, last)][None], device=device)
                value = self(window)[0, 0].cpu().numpy()
                (final if f + self.lookahead <= last else provisional)[f] = value
            out[i] = value
        return out


def train_frame_window(mel: np.ndarray, left_context: int, lookahead: int, hop: int,
                       start: int, count: int):
    """The frames (edge rule applied) a training window of samples start .. start+count-1
    needs, and how its rows interpolate the conditioned frames, as `mel.mel_window` does.

    Returns (frames [n + left_context + lookahead, M], left [count], right [count],
    weight [count]), n = `frames_needed(hop, count)` whatever the window (so windows stack):
    conditioning the frames gives n frames, and sample start + k's row is
    cond[left[k]] * (1 - weight[k]) + cond[right[k]] * weight[k].
    """
    last = mel.shape[0] - 1
    base = min(start // hop, last)
    left, right, weight = interpolation(start, count, hop, last)
    n = frames_needed(hop, count)
    index = np.clip(np.arange(base - left_context, base + n + lookahead), 0, last)
    return mel[index], left - base, right - base, weight
