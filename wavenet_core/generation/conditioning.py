"""Where a stream's mel comes from, and how its frames become per-sample conditioning.

A `MelSource` is a stream's log-mel: `WholeMel` when every frame is known at the start,
`StreamedMel` when frames arrive while the stream plays (the server's WebSocket mel stream).
Both answer the same questions (the frames known now, how many samples they make final,
the length once known), so the generation session and the server's engine treat them alike
and never look inside. F frames make F * hop samples (the HiFi-GAN convention); while more
frames may come, one frame of lookahead (plus a conditioning network's) is held back
(`mel.ready_samples`, docs/architecture.md section 4).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from wavenet_core.audio.mel import ready_samples
from wavenet_core.audio.recipes import (
    model_features,
    range_problem,
    within_bounds,
    within_range,
)
from wavenet_core.audio.wav import resample
from wavenet_core.model.config import WaveNetConfig
from wavenet_core.model.upsampler import conditioning_window


class MelSource(Protocol):
    live: bool          # frames may still arrive (the length is unknown until `ended`)
    ended: bool

    @property
    def frames(self) -> np.ndarray: ...      # [frames known now, mel_channels] float32

    @property
    def ready_samples(self) -> int: ...      # samples those frames make final

    @property
    def num_samples(self) -> int | None: ...  # the stream's length; None while unknown


def mel_num_samples(frames: int, config: WaveNetConfig) -> int:
    """F whole frames -> F * hop_length samples (`ready_samples` of a finished mel)."""
    return ready_samples(int(frames), config.mel.hop_length, final=True)


def check_mel(mel: np.ndarray, config: WaveNetConfig, bounds=None) -> np.ndarray:
    """Validate a [frames, n_mels] log-mel for this model -> contiguous float32.

    Raises ValueError with a message a client can act on (the server names the field),
    also for values outside the range of the model's feature recipe (features of another
    kind, which would give noise). `bounds`: the model's `recipes.range_bounds32`, held by
    a caller that checks many small mels (a streamed mel's every message), so the range
    is not looked up (the cache hashes the config) each time.
    """
    if not config.local_conditioning:
        raise ValueError("this model is not mel conditioned")
    mel = np.asarray(mel)
    channels = config.mel_channels
    if mel.ndim != 2:
        raise ValueError(f"must be 2-D [frames][{channels}], got shape {list(mel.shape)}")
    frames, width = mel.shape
    if width != channels:
        hint = " (transposed?)" if frames == channels else ""
        raise ValueError(f"each frame must have {channels} values for this model, "
                         f"got {width}{hint}")
    if frames < 1:
        raise ValueError("needs at least one frame")
    mel = np.ascontiguousarray(mel, dtype=np.float32)
    if (within_range(mel, config) if bounds is None       # the common case, in one pass
            else within_bounds(mel, bounds)):
        return mel
    if not np.isfinite(mel).all():
        raise ValueError("contains NaN or infinite values")
    problem = range_problem(mel, config)
    if problem:
        raise ValueError(problem)
    return mel


def mel_from_audio(audio: np.ndarray, config: WaveNetConfig,
                   sample_rate: int | None = None) -> np.ndarray:
    """Analyse audio at `sample_rate` (default: the model's) with the model's own feature
    recipe, resampled to the model's rate first."""
    audio = np.asarray(audio, dtype=np.float32)
    if sample_rate is not None:
        audio = resample(audio, sample_rate, config.sample_rate)
    return model_features(audio, config)


def local_from_mel(mel: np.ndarray, config: WaveNetConfig, upsampler=None,
                   cond_net=None) -> np.ndarray:
    """[frames, n_mels] log-mel -> per-sample conditioning [frames * hop, n_mels] in one go
    (through the model's learned `upsampler` when it has one; the mel first through its
    conditioning network `cond_net` as one convolution, condnet.py: the session's frame by
    frame values within float rounding).

    A model with `cond_layers` > 0 must pass its `cond_net`: raw frames would be wrong."""
    mel = check_mel(mel, config)
    if config.cond_layers:
        if cond_net is None:
            raise ValueError(f"this model has a conditioning network (cond_layers="
                             f"{config.cond_layers}): pass the model's cond_net")
        mel = cond_net.condition_mel(mel)
    return conditioning_window(upsampler, mel, config.mel.hop_length, 0,
                               mel_num_samples(len(mel), config))


class WholeMel:
    """A mel known whole at the start."""

    live = False
    ended = True

    def __init__(self, mel: np.ndarray, config: WaveNetConfig):
        self.frames = check_mel(mel, config)
        self.num_samples = self.ready_samples = mel_num_samples(len(self.frames), config)


class StreamedMel:
    """A mel that arrives frame by frame, into a buffer of at most `max_frames`.

    One thread appends (the server's event loop), another reads (the generation thread):
    rows are written before `count` moves past them, so a reader always sees a whole prefix.
    A model with a conditioning network holds back its `cond_lookahead` frames more until
    the end: a conditioned frame is final once the frames it looks ahead to have come.
    """

    live = True

    def __init__(self, config: WaveNetConfig, max_frames: int):
        self.config = config
        self.hop, self.max_frames = config.mel.hop_length, max_frames
        self._rows = np.empty((max_frames, config.mel_channels), np.float32)
        self.count = 0
        self.ended = False

    @property
    def frames(self) -> np.ndarray:
        """The frames received so far, [count, mel_channels] (a view, never copied)."""
        return self._rows[:self.count]

    @property
    def ready_samples(self) -> int:
        return ready_samples(self.count, self.hop, self.ended, self.config.cond_lookahead)

    @property
    def num_samples(self) -> int | None:
        return self.ready_samples if self.ended else None

    @property
    def max_samples(self) -> int:
        return mel_num_samples(self.max_frames, self.config)

    def append(self, frames: np.ndarray) -> None:
        """Frames already checked (`check_mel`); ValueError past the end or the limit."""
        if self.ended:
            raise ValueError("frames after the end of the mel")
        n = len(frames)
        if self.count + n > self.max_frames:
            raise OverflowError(f"the mel is longer than the {self.max_seconds:g} s limit "
                                f"({self.max_frames} frames)")
        self._rows[self.count:self.count + n] = frames
        self.count += n

    @property
    def max_seconds(self) -> float:
        return self.max_frames * self.hop / self.config.sample_rate

    def end(self) -> None:
        if self.ended:
            raise ValueError("the mel has ended already")
        if self.count == 0:
            raise ValueError("no mel frame was sent")
        self.ended = True
