"""A model with pre-emphasis: the runner de-emphasizes each slot's audio with the filter
state carried between chunks, so the server's chunked streams equal one-shot synthesis."""

from __future__ import annotations

import dataclasses

import numpy as np

from server.engine.runner import Job, Runner
from server.engine.scheduler import Stream
from tests.helpers.runner import run_in_chunks
from tests.helpers.tiny_models import random_model
from wavenet_core.audio.wav import float_to_pcm16
from wavenet_core.generation.conditioning import WholeMel, local_from_mel
from wavenet_core.generation.registry import make_backend
from wavenet_core.generation.session import synthesize
from wavenet_core.model.config import MelConfig, WaveNetConfig

CONFIG = WaveNetConfig(layers_per_stack=3, stacks=1, residual_channels=6, skip_channels=10,
                       mel_channels=3, mel=MelConfig(n_mels=3, hop_length=8),
                       preemphasis=0.85)
MELS = [np.random.default_rng(i).standard_normal((5, 3)).astype(np.float32) for i in range(2)]


def _runner_audio(chunks: tuple[int, ...]) -> list[bytes]:
    runner = Runner("m", make_backend(random_model(CONFIG, seed=3), "torch", "cpu"), CONFIG, 3)
    streams = [Stream(f"s{i}", 40, Job(40, seed=i, temperature=1.0,
                                       mel=WholeMel(MELS[i], CONFIG)), slot=slot)
               for i, slot in enumerate((2, 0))]
    out = [b"", b""]
    for pcms in run_in_chunks(runner, streams, chunks):
        for i, pcm in enumerate(pcms):
            out[i] += pcm
    return out


def test_chunked_stream_equals_one_shot_synthesis():
    model = random_model(CONFIG, seed=3)
    expected = [float_to_pcm16(synthesize(
        make_backend(model, "torch", "cpu"), 40, seed=i, local=local_from_mel(MELS[i], CONFIG))
    ).tobytes() for i in range(2)]
    assert _runner_audio((13, 27)) == expected
    assert _runner_audio((40,)) == expected
    plain = dataclasses.replace(CONFIG, preemphasis=0.0)
    assert float_to_pcm16(synthesize(make_backend(random_model(plain, seed=3), "torch", "cpu"),
                                     40, local=local_from_mel(MELS[0], plain))
                          ).tobytes() != expected[0]
