"""The runner feeds mel frames (`MelFrames`) to the triton backend and per-sample rows to
the others: the same streams, chunked the same way, give the same audio on both."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)

from server.engine.runner import Job, Runner  # noqa: E402
from server.engine.scheduler import Stream  # noqa: E402
from tests.helpers.runner import run_in_chunks  # noqa: E402
from tests.helpers.tiny_models import random_model  # noqa: E402
from wavenet_core.generation.conditioning import WholeMel  # noqa: E402
from wavenet_core.generation.registry import make_backend  # noqa: E402
from wavenet_core.model.config import MelConfig, WaveNetConfig  # noqa: E402

CONFIG = WaveNetConfig(layers_per_stack=3, stacks=1, dilation_cycle=(1, 3, 2),
                       residual_channels=6, skip_channels=10, mel_channels=3, num_speakers=2,
                       speaker_channels=2, mel=MelConfig(n_mels=3, hop_length=8))


def _audio(backend_name: str) -> list[bytes]:
    model = random_model(CONFIG, seed=6)
    device = "cuda" if backend_name == "triton" and torch.cuda.is_available() else "cpu"
    runner = Runner("m", make_backend(model, backend_name, device, "fp32"), CONFIG, 3)
    rng = np.random.default_rng(0)
    streams = [Stream(f"s{i}", 30, Job(30, seed=i, temperature=0.0, speaker=i % 2,
                                       mel=WholeMel(rng.standard_normal((5, 3)), CONFIG)),
                      slot=slot)
               for i, slot in enumerate((2, 0))]
    out = [b"", b""]
    for pcms in run_in_chunks(runner, streams, (13, 17)):
        for i, pcm in enumerate(pcms):
            assert isinstance(pcm, bytes), pcm
            out[i] += pcm
    return out


def test_triton_runner_audio_equals_the_torch_runner():
    expected, got = _audio("torch"), _audio("triton")
    assert [len(a) for a in got] == [60, 60]
    assert got == expected
