"""A step's conditioning made for the whole batch at once (`batch_conditioning`, what the
server's runner uses) is bitwise each stream's own (`conditioning`), for frames (the
compiled CPU backend) and per-sample rows (the torch backend), windows that run past the
mel's last frame included; and generating from it gives the same codes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.models import random_model
from wavenet_core.generation.conditioning import WholeMel
from wavenet_core.generation.mel_frames import MelFrames
from wavenet_core.generation.registry import make_backend
from wavenet_core.generation.session import GenerationSession
from wavenet_core.model.config import MelConfig, WaveNetConfig

CONFIG = WaveNetConfig(layers_per_stack=3, stacks=2, residual_channels=12, skip_channels=16,
                       classes=64, mel_channels=6,
                       mel=MelConfig(n_mels=6, n_fft=64, win_length=64, hop_length=8))
STARTS = (0, 13, 40, 95)        # phases 0, 5, 0, 7; the last runs past a 12-frame mel
LENGTHS = (30, 12, 9, 12)


def _session(kind: str, model) -> GenerationSession:
    session = GenerationSession(make_backend(model, kind, "cpu", "fp32"), len(STARTS))
    rng = np.random.default_rng(3)
    for slot, (start, frames) in enumerate(zip(STARTS, LENGTHS)):
        mel = rng.uniform(-9, -3, (frames, CONFIG.mel_channels)).astype(np.float32)
        session.open(slot, seed=slot, mel=WholeMel(mel, CONFIG))
        session.slots[slot].position = start
    return session


@pytest.mark.parametrize("kind", ["cpu", "torch"])
@pytest.mark.parametrize("count", [1, 8, 21])
def test_the_batch_is_each_streams_own(kind, count):
    session = _session(kind, random_model(CONFIG, seed=2))
    slots = [2, 0, 3]                     # any order, not every slot
    batch = session.batch_conditioning(slots, count)
    alone = [session.conditioning(slot, count) for slot in slots]
    if kind == "cpu":
        assert isinstance(batch, MelFrames)
        stacked = MelFrames.stack(alone)
        assert batch.hop == stacked.hop and batch.num_steps == stacked.num_steps == count
        assert np.array_equal(batch.phase, stacked.phase)
        assert np.array_equal(batch.frames, stacked.frames)
    else:
        assert np.array_equal(batch, np.stack(alone))
        assert batch.shape == (len(slots), count, CONFIG.mel_channels)


@pytest.mark.parametrize("kind", ["cpu", "torch"])
def test_generating_from_the_batch_gives_the_codes_of_the_list(kind):
    model = random_model(CONFIG, seed=2)
    a, b = _session(kind, model), _session(kind, model)
    slots = list(range(len(STARTS)))
    for count in (5, 16, 3):
        given = [b.conditioning(slot, count) for slot in slots]
        assert np.array_equal(a.generate_pcm(slots, count), b.generate_pcm(slots, count, given))


def test_a_window_of_one_mel_checks_its_arguments():
    mel = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="start >= 0"):
        MelFrames.windows([mel], 4, [-1], 5)
    with pytest.raises(ValueError, match="mel must be"):
        MelFrames.windows([mel, np.zeros((0, 3), np.float32)], 4, [0, 0], 5)
