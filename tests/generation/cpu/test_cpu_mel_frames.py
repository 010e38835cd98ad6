"""The compiled CPU backend takes mel as frames (`MelFrames`): it projects each frame once
and interpolates the projections per sample (docs/cpu-kernel.md). Proven here: the same
logits as projecting the interpolated rows, and bitwise the same codes in any chunking,
beside any other streams, in group and split mode."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.models import random_model
from wavenet_core.generation.cpu.backend import CpuBackend
from wavenet_core.generation.cpu.sync import SPLIT_SUPPORTED
from wavenet_core.generation.mel_frames import MelFrames
from wavenet_core.model.config import WaveNetConfig

MEL = WaveNetConfig(layers_per_stack=3, stacks=2, dilation_cycle=(1, 3, 2),
                    residual_channels=20, skip_channels=24, classes=64,
                    mel_channels=5, num_speakers=3, speaker_channels=4)
HOP = 4


def _mel(frames: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((frames, MEL.mel_channels)) \
        .astype(np.float32)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_frames_give_the_logits_of_their_per_sample_rows(precision):
    model = random_model(MEL, seed=1)
    backend = CpuBackend(model, threads=1, precision=precision)
    steps = 45
    windows = [MelFrames.window(_mel(14, seed), HOP, start, steps)
               for seed, start in ((0, 7), (1, 0), (2, 13))]        # phases 3, 0, 1
    frames = MelFrames.stack(windows)
    codes = np.random.default_rng(0).integers(0, MEL.classes, (3, steps))
    out = []
    for local in (frames, frames.per_sample()):
        state = backend.new_state(3)
        for slot in range(3):
            backend.open_slot(state, slot, speaker=slot)
        out.append(backend.teacher_force(state, [0, 1, 2], codes, local))
    np.testing.assert_allclose(out[0], out[1], rtol=0, atol=1e-5)
    assert np.abs(out[0]).max() > 0.1                                # not all zero


def _stream(backend, state, slots, mels, chunks):
    """Generate `chunks` for `slots`, each stream's frames cut from its own mel."""
    out, done = [], 0
    for k in chunks:
        window = MelFrames.stack([MelFrames.window(mel, HOP, done, k) for mel in mels])
        out.append(backend.generate(state, slots, k, window))
        done += k
    return np.concatenate(out, axis=1)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_frame_stream_is_bitwise_the_same_in_any_chunking_and_company(temperature):
    model = random_model(MEL, seed=2)
    steps = 90
    mine = dict(seed=77, temperature=temperature, speaker=1)
    my_mel = _mel(steps // HOP + 3, seed=9)
    alone = CpuBackend(model, threads=1)
    state = alone.new_state(1)
    alone.open_slot(state, 0, **mine)
    expected = _stream(alone, state, [0], [my_mel], [steps])[0]

    runs = [(2, "never", [5, 40, 45]), (1, "never", [1, 2, 87])]
    if SPLIT_SUPPORTED:
        runs.append((2, "always", [33, 57]))
    for threads, split, chunks in runs:
        backend = CpuBackend(model, threads=threads, split=split)
        n = 1 if split == "always" else 9        # split mode: fewer slots than threads
        state = backend.new_state(n + 1)
        mels = []
        for slot in range(n):
            if slot == n // 2:
                backend.open_slot(state, slot + 1, **mine)
                mels.append(my_mel)
            else:
                backend.open_slot(state, slot + 1, seed=slot, temperature=1.0, speaker=slot % 3)
                mels.append(_mel(steps // HOP + 3, seed=100 + slot))
        got = _stream(backend, state, list(range(1, n + 1)), mels, chunks)
        np.testing.assert_array_equal(got[n // 2], expected, err_msg=f"{threads=} {split=}")


def test_frames_of_the_wrong_shape_are_refused():
    backend = CpuBackend(random_model(MEL, seed=3), threads=1)
    state = backend.new_state(1)
    backend.open_slot(state, 0)
    window = MelFrames.window(_mel(10, 0), HOP, 0, 8)
    with pytest.raises(ValueError, match="mel frames must cover"):
        backend.generate(state, [0], 9, window)
    with pytest.raises(ValueError, match="local must be"):
        backend.generate(state, [0], 8, np.zeros((1, 8, MEL.mel_channels + 1), np.float32))
