"""A mel streamed in frame by frame (WS /v1/stream with `"mel_stream": true`).

The WebSocket route appends frames as they arrive (on the event loop); the runner reads
`frames` on its own thread. Rows are written before `count` moves past them, so the runner
always sees a whole prefix. How many samples the frames so far allow is the library's rule,
`wavenet_core.audio.mel.ready_samples` (one frame of lookahead until the end, plus `cond_lookahead`
frames for a model with a conditioning network), and the runner turns them into conditioning
with `mel_window` (after the conditioning network, frame by frame), exactly as for a mel sent
whole: the same seed gives the same audio.
"""

from __future__ import annotations

import numpy as np

from wavenet_core.audio.mel import ready_samples
from wavenet_core.generation.synthesis import check_mel


class MelFeedError(ValueError):
    """Frames this stream cannot take; the message names the problem."""

    def __init__(self, message: str, too_long: bool = False):
        super().__init__(message)
        self.too_long = too_long


class MelFeed:
    def __init__(self, config, max_frames: int):
        self.config = config
        self.channels, self.hop = config.mel_channels, config.mel.hop_length
        self.max_frames = max_frames
        self._rows = np.empty((max_frames, self.channels), np.float32)
        self.count = 0
        self.ended = False

    @property
    def frames(self) -> np.ndarray:
        """The frames received so far, [count, mel_channels] (a view, never copied)."""
        return self._rows[:self.count]

    @property
    def ready_samples(self) -> int:
        """Samples the frames so far make final. A model with a conditioning network
        (`cond_layers`) holds back its `cond_lookahead` frames more until the end: a
        conditioned frame is final once the frames it looks ahead to have come."""
        return ready_samples(self.count, self.hop, self.ended, self.config.cond_lookahead)

    def from_bytes(self, data: bytes) -> np.ndarray:
        """A binary message: float32 little-endian, n x mel_channels."""
        size = 4 * self.channels
        if len(data) % size:
            raise MelFeedError(f"a binary message of {len(data)} bytes is not a whole number "
                               f"of frames ({self.channels} float32 = {size} bytes each)")
        return self._checked(np.frombuffer(data, dtype="<f4").reshape(-1, self.channels))

    def from_json(self, frames) -> np.ndarray:
        """`{"type": "mel", "frames": [[...], ...]}`'s frames."""
        if not isinstance(frames, list) or not all(isinstance(f, list) for f in frames):
            raise MelFeedError("frames: must be a list of frames, each a list of "
                               f"{self.channels} numbers")
        widths = {len(f) for f in frames}
        if len(widths) > 1:
            raise MelFeedError(f"frames: frames have different lengths {sorted(widths)[:5]}")
        try:
            array = np.asarray(frames, dtype=np.float32).reshape(len(frames), -1)
        except (ValueError, TypeError, OverflowError):
            raise MelFeedError("frames: values must be numbers") from None
        return self._checked(array)

    def _checked(self, array: np.ndarray) -> np.ndarray:
        try:
            return check_mel(array, self.config)
        except ValueError as exc:
            raise MelFeedError(f"frames: {exc}") from None

    def append(self, frames: np.ndarray) -> None:
        if self.ended:
            raise MelFeedError("frames after {\"type\": \"end\"}")
        n = len(frames)
        if self.count + n > self.max_frames:
            seconds = self.max_frames * self.hop / self.config.sample_rate
            raise MelFeedError(f"the mel is longer than the {seconds:g} s limit "
                               f"({self.max_frames} frames)", too_long=True)
        self._rows[self.count:self.count + n] = frames
        self.count += n

    def end(self) -> None:
        if self.ended:
            raise MelFeedError("end: the mel has ended already")
        if self.count == 0:
            raise MelFeedError("end: no mel frame was sent")
        self.ended = True
