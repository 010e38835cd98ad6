"""A mel streamed in over the WebSocket (`"mel_stream": true`): the library's `StreamedMel`
with the wire's two encodings of frames and errors that name the problem.

The WebSocket reader appends frames as they arrive (on the event loop); the generation
session reads them on the runner's thread (wavenet_core/generation/conditioning.py says
why that is safe and how many samples the frames so far make final).
"""

from __future__ import annotations

import numpy as np

from wavenet_core.audio.recipes import range_bounds32
from wavenet_core.generation.conditioning import StreamedMel, check_mel


class MelFeedError(ValueError):
    """Frames this stream cannot take; the message names the problem."""

    def __init__(self, message: str, too_long: bool = False):
        super().__init__(message)
        self.too_long = too_long


class MelFeed(StreamedMel):
    def __init__(self, config, max_frames: int):
        super().__init__(config, max_frames)
        self._bounds = range_bounds32(config)     # once: a frame's check is then one pass

    def from_bytes(self, data: bytes) -> np.ndarray:
        """A binary message: float32 little-endian, n x mel_channels."""
        channels = self.config.mel_channels
        size = 4 * channels
        if len(data) % size:
            raise MelFeedError(f"a binary message of {len(data)} bytes is not a whole number "
                               f"of frames ({channels} float32 = {size} bytes each)")
        return self._checked(np.frombuffer(data, dtype="<f4").reshape(-1, channels))

    def from_json(self, frames) -> np.ndarray:
        """`{"type": "mel", "frames": [[...], ...]}`'s frames."""
        channels = self.config.mel_channels
        if not isinstance(frames, list) or not all(isinstance(f, list) for f in frames):
            raise MelFeedError(f"frames: must be a list of frames, each a list of {channels} "
                               "numbers")
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
            return check_mel(array, self.config, self._bounds)
        except ValueError as exc:
            raise MelFeedError(f"frames: {exc}") from None

    def append(self, frames: np.ndarray) -> None:
        try:
            super().append(frames)
        except OverflowError as exc:
            raise MelFeedError(str(exc), too_long=True) from None
        except ValueError:
            raise MelFeedError("frames after {\"type\": \"end\"}") from None

    def end(self) -> None:
        try:
            super().end()
        except ValueError as exc:
            raise MelFeedError(f"end: {exc}") from None
