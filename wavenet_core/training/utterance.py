"""One training utterance: the mu-law codes of silence-padded audio and its log-mel.

Both the corpus folder reader (data.py) and the pack reader (pack.py) make these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wavenet_core.audio.emphasis import preemphasize
from wavenet_core.audio.mel import log_mel
from wavenet_core.audio.mulaw import mulaw_encode
from wavenet_core.model.config import WaveNetConfig


@dataclass
class Utterance:
    codes: np.ndarray          # [samples] uint8 mu-law codes (silence-padded at the start)
    mel: np.ndarray | None     # [frames, n_mels] float32 log-mel of the padded audio
    speaker: int


def make_utterance(audio: np.ndarray, speaker: int, config: WaveNetConfig, pad: int) -> Utterance:
    audio = np.concatenate([np.zeros(pad, dtype=np.float32), audio.astype(np.float32)])
    mel = log_mel(audio, config.sample_rate, config.mel) if config.local_conditioning else None
    codes = mulaw_encode(preemphasize(audio, config.preemphasis))
    return Utterance(codes.astype(np.uint8), mel, int(speaker))
