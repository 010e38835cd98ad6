"""A chunk's mel conditioning as frames instead of per-sample rows.

`mel_window` gives every sample the linear interpolation of two mel frames. A backend
whose first use of the mel is a linear projection can project the (few) frames and
interpolate the projections instead: the two commute, and a frame is `hop_length` samples,
so the projection costs 1/hop of the per-sample one and the conditioning that travels to
the device is 1/hop as large. `MelFrames` is that form for a batch of streams: row r's
sample k (of the chunk) sits at frame position (phase[r] + k) / hop in frames[r].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wavenet_core.audio.mel import frames_needed  # noqa: F401  (the rule, for this module's users)


@dataclass
class MelFrames:
    frames: np.ndarray      # [n, F, M] float32
    phase: np.ndarray       # [n] int64, 0 <= phase < hop
    hop: int
    num_steps: int          # samples the window covers

    @classmethod
    def window(cls, mel, hop: int, start: int, count: int) -> MelFrames:
        """One stream's frames for samples start .. start+count-1 (a batch of one).

        Frames past the mel's end repeat its last frame, which is what `mel_window`'s
        clamp gives: `per_sample()` equals `mel_window(mel, hop, start, count)` (bitwise
        before the last frame; past it a*(1-w) + a*w, within an ulp of a).
        """
        return cls.windows([mel], hop, [start], count)

    @classmethod
    def windows(cls, mels: list, hop: int, starts: list[int], count: int) -> MelFrames:
        """`window` for a batch of streams at once, written straight into the batch's
        array: stream i's frames `mels[i]` from its sample `starts[i]`, each row bitwise
        what `window` gives it alone."""
        if hop < 1 or count < 0 or min(starts, default=0) < 0:
            raise ValueError(f"need hop >= 1, start >= 0, count >= 0: got {hop}, "
                             f"{min(starts, default=0)}, {count}")
        mels = [np.asarray(mel, dtype=np.float32) for mel in mels]
        for mel in mels:
            if mel.ndim != 2 or mel.shape[0] < 1:
                raise ValueError(f"mel must be [frames >= 1, n_mels], got shape {mel.shape}")
        needed = np.arange(frames_needed(hop, count))
        first = np.asarray(starts, np.int64) // hop
        out = np.empty((len(mels), len(needed), mels[0].shape[1] if mels else 0), np.float32)
        for i, mel in enumerate(mels):
            np.take(mel, np.minimum(first[i] + needed, mel.shape[0] - 1), axis=0, out=out[i])
        return cls(out, np.asarray(starts, np.int64) - first * hop, hop, count)

    @classmethod
    def stack(cls, windows: list[MelFrames]) -> MelFrames:
        """Windows of the same hop and length, one per stream -> one batch."""
        hop, steps = windows[0].hop, windows[0].num_steps
        if any(w.hop != hop or w.num_steps != steps for w in windows):
            raise ValueError("stacked mel windows need the same hop and length")
        return cls(np.concatenate([w.frames for w in windows]),
                   np.concatenate([w.phase for w in windows]), hop, steps)

    @classmethod
    def from_rows(cls, local: np.ndarray) -> MelFrames:
        """Per-sample rows [n, K, M] as frames of hop 1 (the last row repeated once)."""
        local = np.asarray(local, dtype=np.float32)
        frames = np.concatenate([local, local[:, -1:]], axis=1)
        return cls(frames, np.zeros(len(local), np.int64), 1, local.shape[1])

    @classmethod
    def coerce(cls, local, n: int, num_steps: int, mel_channels: int,
               frames_ok: bool = True) -> MelFrames | None:
        """A backend's `local` argument checked and as frames: None for a model without mel;
        per-sample rows [n, num_steps, M] (array or tensor) become frames of hop 1. Without
        `frames_ok` (a model with a learned upsampler, whose rows are not an interpolation of
        frames) frames of a hop > 1 are refused."""
        if not mel_channels:
            if local is not None:
                raise ValueError("this model takes no local conditioning")
            return None
        if local is None:
            raise ValueError("this model is locally conditioned: pass `local`")
        if not isinstance(local, MelFrames):
            rows = np.asarray(local.detach().cpu() if isinstance(local, torch.Tensor) else local,
                              dtype=np.float32)
            if rows.shape != (n, num_steps, mel_channels):
                raise ValueError(f"local must be [{n}, {num_steps}, {mel_channels}], "
                                 f"got {rows.shape}")
            return cls.from_rows(rows)
        if local.hop > 1 and not frames_ok:
            raise ValueError("a model with a learned upsampler takes per-sample rows "
                             "(upsampler.conditioning_window), not MelFrames")
        if (len(local) != n or local.frames.shape[2] != mel_channels
                or local.num_steps != num_steps):
            raise ValueError(f"mel frames must cover {n} streams x {num_steps} samples x "
                             f"{mel_channels} channels")
        return local

    def __len__(self) -> int:
        return self.frames.shape[0]

    def per_sample(self) -> np.ndarray:
        """The rows [n, K, M] this window stands for (for backends that take rows)."""
        u = self.phase[:, None] + np.arange(self.num_steps)[None, :]
        left = u // self.hop
        weight = ((u % self.hop) / self.hop).astype(np.float32)[..., None]
        take = np.take_along_axis
        lo = take(self.frames, left[..., None], axis=1)
        hi = take(self.frames, np.minimum(left + 1, self.frames.shape[1] - 1)[..., None], axis=1)
        return lo * (np.float32(1.0) - weight) + hi * weight
