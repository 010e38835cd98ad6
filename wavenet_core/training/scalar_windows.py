"""Teacher-forcing windows for scalar-I/O models (converted r9y9 ones: samples in, a
mixture of logistics or a Gaussian out), as their training saw the audio.

`scalar_track` makes, from audio at the model's rate, the signal the model predicts and
each sample's conditioning row, the way r9y9's preprocessing paired them:
- the signal: the recipe's peak rescaling (`rescaling_max`; their targets were rescaled
  as their features were), then the config's pre-emphasis (0 for a converted model: their
  pre-emphasis touched the STFT input only, which `model_features` does itself);
- features from `audio/recipes.py:model_features` (the model's own recipe); F frames make
  F * hop samples. lws frames start n_fft - hop samples before the audio, and their
  preprocessing padded the audio the same way, so the signal gets that many zeros first
  (docs/r9y9.md); the other recipes' centred frames start at sample 0. The signal is cut
  or zero-padded to F * hop;
- rows from `upsampler.conditioning_window` over the whole mel (the learned upsampler, or
  linear interpolation without one), what the generation session gives the kernel.

`scalar_batches` cuts deterministic non-overlapping windows like `data.fixed_batches`: a
window at s has inputs signal[s : s+R-1+L], the rows of the samples they predict
(s+1 .. s+R-1+L: the row of sample t conditions its own prediction, as in generation;
r9y9's training loss pairs x[t] with row t instead, one sample earlier) and targets
signal[s+R : s+R+L], the predictions with the full receptive field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wavenet_core.audio.emphasis import preemphasize
from wavenet_core.audio.recipes import model_features
from wavenet_core.model.config import WaveNetConfig
from wavenet_core.model.upsampler import conditioning_window


@dataclass
class ScalarTrack:
    signal: np.ndarray        # [N] float32 samples in [-1, 1]
    rows: np.ndarray | None   # [N, M] float32 per-sample conditioning (None without mel)
    speaker: int


@dataclass
class ScalarBatch:
    inputs: np.ndarray        # [B, R-1+L] float32 samples
    targets: np.ndarray       # [B, L] float32
    rows: np.ndarray | None   # [B, R-1+L, M] float32
    speaker: np.ndarray       # [B] int64


def scalar_track(audio: np.ndarray, speaker: int, config: WaveNetConfig,
                 upsampler=None) -> ScalarTrack:
    """Audio (1-D, at config.sample_rate) -> the model's signal and rows (module docstring)."""
    audio = np.asarray(audio, np.float32)
    recipe = config.features
    signal = audio
    peak = float(np.abs(audio).max(initial=0.0))
    if recipe is not None and recipe.rescaling_max and peak > 0:
        signal = audio / peak * recipe.rescaling_max
    signal = preemphasize(signal, config.preemphasis)
    if not config.local_conditioning:
        return ScalarTrack(signal.astype(np.float32), None, int(speaker))
    mel = model_features(audio, config)
    hop = config.mel.hop_length
    lead = (config.mel.n_fft - hop
            if recipe is not None and recipe.kind == "r9y9" and recipe.stft == "lws" else 0)
    n = len(mel) * hop
    padded = np.zeros(n, np.float32)
    part = signal[:max(0, n - lead)]
    padded[lead:lead + len(part)] = part
    with torch.no_grad():
        rows = conditioning_window(upsampler, mel, hop, 0, n)
    return ScalarTrack(padded, np.ascontiguousarray(rows, np.float32), int(speaker))


def scalar_batches(tracks: list[ScalarTrack], config: WaveNetConfig, batch_size: int,
                   length: int) -> list[ScalarBatch]:
    """Non-overlapping windows of `length` predictions over every track, in batches."""
    field = config.receptive_field
    span = field + length
    picks = [(t, s) for t in tracks for s in range(0, len(t.signal) - span + 1, length)]
    out = []
    for i in range(0, len(picks), batch_size):
        chunk = picks[i:i + batch_size]
        rows = None
        if config.local_conditioning:
            rows = np.stack([t.rows[s + 1:s + field + length] for t, s in chunk])
        out.append(ScalarBatch(
            inputs=np.stack([t.signal[s:s + field - 1 + length] for t, s in chunk]),
            targets=np.stack([t.signal[s + field:s + field + length] for t, s in chunk]),
            rows=rows, speaker=np.array([t.speaker for t, _ in chunk], np.int64)))
    return out

