"""One training utterance: the mu-law codes of silence-padded audio and its log-mel.

Both the corpus folder reader (data.py) and the pack reader (pack.py) make these. An
excitation model's (docs/excitation.md) also holds the linear prediction p of every sample
from its mel's coefficients (`lpc.lpc_window`, the rows generation uses) and the codes of
the excitation x - p; its codes are those of x (the audio, or a pack's codes decoded).

With `input_noise` (LPCNet's noise injection, docs/excitation.md "Noise injection") the
inputs and the predictions come from a noisy copy of x while the targets stay the
excitation of the clean x under that noisy prediction: the network learns to pull a
drifting history back, as generation needs when its own errors go through 1/A(z).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wavenet_core.audio.emphasis import preemphasize
from wavenet_core.audio.lpc import lpc_window, prediction
from wavenet_core.audio.mulaw import (
    mulaw_compress,
    mulaw_decode,
    mulaw_encode,
    mulaw_encode_exact,
    mulaw_expand,
)
from wavenet_core.audio.recipes import model_features
from wavenet_core.model.config import WaveNetConfig


@dataclass
class Utterance:
    codes: np.ndarray          # [samples] uint8 mu-law codes (silence-padded at the start)
    mel: np.ndarray | None     # [frames, n_mels] float32 features of the padded audio (the
                               # model's recipe: log-mel unless it says otherwise)
    speaker: int
    prediction: np.ndarray | None = None   # [samples] float32 (excitation models)
    targets: np.ndarray | None = None      # [samples] uint8 excitation codes (idem)


def make_utterance(audio: np.ndarray, speaker: int, config: WaveNetConfig, pad: int,
                   noise: InputNoise | None = None) -> Utterance:
    audio = np.concatenate([np.zeros(pad, dtype=np.float32), audio.astype(np.float32)])
    mel = model_features(audio, config) if config.local_conditioning else None
    codes = mulaw_encode(preemphasize(audio, config.preemphasis))
    utterance = Utterance(codes.astype(np.uint8), mel, int(speaker))
    return (with_excitation(utterance, config, audio, noise) if config.lpc_excitation
            else utterance)


@dataclass(frozen=True)
class InputNoise:
    """Gaussian noise of standard deviation `steps` mu-law steps (of 2 / (classes - 1) in
    the companded domain) added to the history an excitation model's inputs see."""
    steps: float
    rng: np.random.Generator

    def apply(self, x: np.ndarray, classes: int) -> np.ndarray:
        mu = classes - 1
        y = mulaw_compress(np.asarray(x, np.float64), mu)
        y = np.clip(y + self.rng.standard_normal(len(y)) * (self.steps * 2.0 / mu), -1.0, 1.0)
        return mulaw_expand(y, mu).astype(np.float32)


def with_excitation(utterance: Utterance, config: WaveNetConfig,
                    audio: np.ndarray | None = None,
                    noise: InputNoise | None = None) -> Utterance:
    """An excitation model's utterance: inputs the codes of x (`audio`, or the decoded
    codes of a pack), the prediction p of each sample and the codes of x - p; with `noise`,
    inputs and p from the noisy x and targets x - p of the clean x (module docstring)."""
    x = (mulaw_decode(utterance.codes, mu=config.classes - 1) if audio is None
         else np.asarray(audio, np.float32))
    seen = x if noise is None or noise.steps <= 0 else noise.apply(x, config.classes)
    p = prediction(seen, lpc_window(utterance.mel, config, 0, len(x)))
    code = lambda v: mulaw_encode_exact(v, config.classes).astype(np.uint8)  # noqa: E731
    return Utterance(code(seen), utterance.mel, utterance.speaker, p, code(x - p))
