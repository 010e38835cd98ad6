"""A whole mel's per-sample rows, for tests that check `mel_window` over a whole stream."""

from __future__ import annotations

from wavenet_core.audio.mel import mel_window


def upsample_mel(mel, hop_length: int, num_samples: int):
    """Frame features ``[frames, n_mels]`` -> per-sample float32 ``[num_samples, n_mels]``
    (`mel_window` from sample 0)."""
    if num_samples < 0:
        raise ValueError(f"need num_samples >= 0, got {num_samples}")
    return mel_window(mel, hop_length, 0, num_samples)
