"""WaveNet: mu-law class embedding -> stacks of dilated residual layers -> summed skips -> head.

Alignment (teacher forcing): for codes x[0..T-1] the forward gives T - R + 1 logit
vectors (R = receptive_field): logits[:, :, j] see x[j .. j+R-1] and predict x[j + R].
Train with `model(x[:, :-1])` against targets `x[:, R:]`.

Local conditioning `local` is per sample, [B, mel_channels, T], aligned with the *input*
positions: local[:, :, t] conditions the output at input position t, i.e. the prediction
of x[t+1]. So it is the (upsampled) mel of the sample being predicted: pass mel[1..T].
The model standardises it itself, `(local - config.mel_mean) / config.mel_std` (constants
measured on the training corpus and kept in the config), so callers always pass raw log-mel.

Inputs are mu-law codes (int64) with `input_kind` "embedding", samples in [-1, 1] (float)
with "scalar". The head gives `config.output_channels` values per position: softmax logits,
or mixture / Gaussian parameters (generation/sampling.py). With a learned upsampler
(`upsample_scales`) `local` is still per-sample rows: `self.upsampler` makes them from frames
(upsampler.py), outside the forward, so a chunk upsamples only its own frames.
With a conditioning network (`cond_layers`, condnet.py) `local` is the rows of the
*conditioned* mel: `self.cond_net` makes it from the raw frames, outside the forward
(`conditioning.local_from_mel`, or `local_from_frame_window` for training windows).

An excitation model (`excitation` "lpc", docs/excitation.md) also takes `prediction`
[B, T], aligned like `local`: prediction[:, t] is the linear prediction p of x[t+1] from
the samples before it (wavenet_core/audio/lpc.py). It enters as p times a learned vector
`prediction_input` [C] added to the input vector, and the outputs are the logits of the
mu-law code of the excitation x[t+1] - p.

Inside, activations run channels-last ([B, T, C]); see layers.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wavenet_core.model.condnet import ConditioningNetwork
from wavenet_core.model.config import WaveNetConfig
from wavenet_core.model.layers import Conv1d1x1, ResidualLayer, pointwise
from wavenet_core.model.upsampler import LearnedUpsampler


class WaveNet(nn.Module):
    def __init__(self, config: WaveNetConfig):
        super().__init__()
        self.config = config
        c = config
        self.embedding = self.input_1x1 = None
        if c.scalar_io:
            self.input_1x1 = Conv1d1x1(1, c.residual_channels, bias=True)
        else:
            self.embedding = nn.Embedding(c.classes, c.residual_channels)
        self.prediction_input = (nn.Parameter(torch.randn(c.residual_channels))
                                 if c.lpc_excitation else None)
        self.upsampler = (LearnedUpsampler(c.upsample_scales, c.upsample_freq_kernel)
                          if c.upsample_scales and c.local_conditioning else None)
        self.cond_net = ConditioningNetwork(c) if c.cond_layers else None
        self.speaker_embedding = (
            nn.Embedding(c.num_speakers, c.speaker_channels) if c.global_conditioning else None
        )
        self.layers = nn.ModuleList(
            ResidualLayer(d, c.residual_channels, c.skip_channels, c.mel_channels,
                          c.speaker_channels if c.global_conditioning else 0, c.kernel_size,
                          c.gate_width, c.out_bias, c.residual_scale)
            for d in c.dilations
        )
        self.head_1x1 = Conv1d1x1(c.skip_channels, c.skip_channels, bias=True)
        self.logits_1x1 = Conv1d1x1(c.skip_channels, c.output_channels, bias=True)

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    def speaker_vectors(self, speaker: torch.Tensor | None) -> torch.Tensor | None:
        """Speaker ids [B] -> [B, speaker_channels] (None when not globally conditioned)."""
        if self.speaker_embedding is None:
            return None
        if speaker is None:
            raise ValueError("this model is speaker conditioned: pass `speaker` ids")
        return self.speaker_embedding(speaker)

    def input_vectors(self, inputs: torch.Tensor,
                      prediction: torch.Tensor | None = None) -> torch.Tensor:
        """Codes (or samples in [-1, 1]) [B, T] (and an excitation model's predictions
        [B, T]) -> first-layer inputs [B, T, C]."""
        if (prediction is None) != (self.prediction_input is None):
            raise ValueError("an excitation model (excitation 'lpc') needs `prediction`; "
                             "other models take none")
        if self.embedding is None:
            return pointwise(inputs.to(torch.float32).unsqueeze(-1), self.input_1x1)
        x = self.embedding(inputs)
        if prediction is not None:
            x = x + prediction.to(x.dtype).unsqueeze(-1) * self.prediction_input
        return x

    def local_from_frame_window(self, frames: torch.Tensor, left: torch.Tensor,
                                right: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Training windows given as frames (data.FrameWindow): raw frames
        [B, n + context, M] -> conditioned frames (with a conditioning network) -> per-sample
        rows [B, M, K] interpolated as `mel.mel_window` does (left / right [B, K] frame
        indices, weight [B, K]): without a conditioning network, `mel_window`'s rows bitwise."""
        cond = self.cond_net(frames) if self.cond_net is not None else frames
        lo = torch.gather(cond, 1, left.unsqueeze(-1).expand(-1, -1, cond.size(2)))
        hi = torch.gather(cond, 1, right.unsqueeze(-1).expand(-1, -1, cond.size(2)))
        w = weight.unsqueeze(-1)
        return (lo * (1.0 - w) + hi * w).transpose(1, 2)

    def standardise_local(self, local: torch.Tensor | None) -> torch.Tensor | None:
        """Raw per-sample log-mel [B, M, T] -> standardised, channels-last [B, T, M]."""
        if local is None:
            return None
        c = self.config
        return ((local - c.mel_mean) / c.mel_std).transpose(1, 2)

    def run_layers(self, codes: torch.Tensor, local: torch.Tensor | None = None,
                   speaker: torch.Tensor | None = None, pad: bool = False,
                   keep_inputs: bool = False, prediction: torch.Tensor | None = None):
        """Embedding and residual stacks -> (summed skips [B, S, T_out], per-layer inputs).

        Per-layer inputs [B, C, T] are kept only with `keep_inputs` (queue priming needs them).
        """
        x = self.input_vectors(codes, prediction)
        spk = self.speaker_vectors(speaker)
        local = self.standardise_local(local)
        layer_inputs, skips = [], []
        for layer in self.layers:
            if keep_inputs:
                layer_inputs.append(x.transpose(1, 2))
            x, skip = layer(x, local, spk, pad=pad)
            skips.append(skip)
        shortest = skips[-1].size(1)
        skip_sum = sum(s[:, -shortest:] for s in skips)
        return skip_sum.transpose(1, 2), layer_inputs

    def head(self, skip_sum: torch.Tensor) -> torch.Tensor:
        """ReLU -> 1x1 -> ReLU -> 1x1: skips [B, S, T] -> outputs [B, output_channels, T]."""
        hidden = F.relu(pointwise(F.relu(skip_sum.transpose(1, 2)), self.head_1x1))
        return pointwise(hidden, self.logits_1x1).transpose(1, 2)

    def forward(self, codes: torch.Tensor, local: torch.Tensor | None = None,
                speaker: torch.Tensor | None = None, pad: bool = False,
                prediction: torch.Tensor | None = None) -> torch.Tensor:
        """codes [B, T] -> outputs [B, output_channels, T - R + 1] ([.., T] with pad)."""
        skip_sum, _ = self.run_layers(codes, local, speaker, pad=pad, prediction=prediction)
        return self.head(skip_sum)
