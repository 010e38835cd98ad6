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
from numba import njit

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
    the companded domain) in the history an excitation model's inputs see.

    domain "signal": added to each sample x_t's companded value, independently.
    domain "excitation" (LPCNet's dump_data): added to the companded excitation in a closed
    loop, as generation's own errors arise: s_t = p_t + e~_t with p_t predicted from the
    noisy history s and e~_t the noisy excitation x_t - p_t. Its size then follows the
    excitation's mu-law steps, several times finer than the signal's in voiced speech
    (docs/excitation.md, "Noise injection").

    law "gaussian": every utterance gets Gaussian draws of standard deviation `steps`.
    law "lpcnet" (LPCNet's dump_data): each utterance draws its own standard deviation,
    |-1.5 ln u1 - 0.5 ln u2| (u uniform), scaled so its mean is `steps` (a long tail: 5% of
    utterances above 2.5x it), and Laplacian draws of that deviation; the network then
    also sees histories that drifted far, as a runaway's do."""
    steps: float
    rng: np.random.Generator
    domain: str = "signal"
    law: str = "gaussian"

    def __post_init__(self):
        if self.domain not in NOISE_DOMAINS:
            raise ValueError(f"input noise domain must be one of {NOISE_DOMAINS}, "
                             f"got {self.domain!r}")
        if self.law not in NOISE_LAWS:
            raise ValueError(f"input noise law must be one of {NOISE_LAWS}, "
                             f"got {self.law!r}")

    def deviation(self) -> float:
        """This utterance's standard deviation in mu-law steps."""
        if self.law == "gaussian":
            return self.steps
        u1, u2 = self.rng.random(2)
        return self.steps * abs(-1.5 * np.log(1e-4 + u1) - 0.5 * np.log(1e-4 + u2)) / 2.0

    def draws(self, n: int, mu: int) -> np.ndarray:
        """n draws in the companded domain (one mu-law step is 2 / mu)."""
        std = self.deviation() * 2.0 / mu
        if self.law == "gaussian":
            return self.rng.standard_normal(n) * std
        return self.rng.laplace(0.0, std / np.sqrt(2.0), n)

    def noisy(self, x: np.ndarray, rows: np.ndarray, classes: int) -> np.ndarray:
        """The noisy history for signal x [T] under coefficient rows [T, order]."""
        mu = classes - 1
        draws = self.draws(len(x), mu)
        if self.domain == "excitation":
            return _closed_loop(np.asarray(x, np.float32), np.asarray(rows, np.float32),
                                draws, float(mu))
        y = np.clip(mulaw_compress(np.asarray(x, np.float64), mu) + draws, -1.0, 1.0)
        return mulaw_expand(y, mu).astype(np.float32)


NOISE_DOMAINS = ("signal", "excitation")
NOISE_LAWS = ("gaussian", "lpcnet")


@njit(cache=True)
def _closed_loop(x, rows, draws, mu):
    """s_t = clip(p_t + expand(compress(clip(x_t - p_t)) + draws_t)), p_t = -sum_j a_j s_t-j
    (mulaw_compress / mulaw_expand for one float; float64 sums: the prediction the
    network is then given is recomputed from s by `lpc.prediction`)."""
    order = rows.shape[1]
    s = np.zeros(len(x), np.float32)
    scale = np.log1p(mu)
    for t in range(len(x)):
        p = 0.0
        for j in range(min(order, t)):
            p -= rows[t, j] * s[t - 1 - j]
        e = min(1.0, max(-1.0, x[t] - p))
        y = np.sign(e) * np.log1p(mu * abs(e)) / scale + draws[t]
        y = min(1.0, max(-1.0, y))
        s[t] = min(1.0, max(-1.0, p + np.sign(y) * np.expm1(abs(y) * scale) / mu))
    return s


def with_excitation(utterance: Utterance, config: WaveNetConfig,
                    audio: np.ndarray | None = None,
                    noise: InputNoise | None = None) -> Utterance:
    """An excitation model's utterance: inputs the codes of x (`audio`, or the decoded
    codes of a pack), the prediction p of each sample and the codes of x - p; with `noise`,
    inputs and p from the noisy x and targets x - p of the clean x (module docstring)."""
    x = (mulaw_decode(utterance.codes, mu=config.classes - 1) if audio is None
         else np.asarray(audio, np.float32))
    rows = lpc_window(utterance.mel, config, 0, len(x))
    seen = x if noise is None or noise.steps <= 0 else noise.noisy(x, rows, config.classes)
    p = prediction(seen, rows)
    code = lambda v: mulaw_encode_exact(v, config.classes).astype(np.uint8)  # noqa: E731
    return Utterance(code(seen), utterance.mel, utterance.speaker, p, code(x - p))
