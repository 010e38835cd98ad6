"""`GenerationSession.warm`: one hop through the session at load, so the per-chunk numba
code outside the backend's kernel (an excitation model's LPC rows, voicing-shaped rows)
compiles then, not in the middle of the first request (issue 32), and leaves no trace."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from tests.helpers.models import random_model
from wavenet_core.audio import frame_analysis
from wavenet_core.generation import TorchBackend
from wavenet_core.generation.conditioning import StreamedMel, mel_from_audio
from wavenet_core.generation.session import GenerationSession
from wavenet_core.model.config import MelConfig, WaveNetConfig

CONFIG = WaveNetConfig(layers_per_stack=3, stacks=1, residual_channels=6, skip_channels=10,
                       mel_channels=8, mel=MelConfig(n_mels=8, hop_length=8), mel_mean=-3.0,
                       excitation="lpc", lpc_order=6, voiced_temperature=0.5,
                       voiced_floor=0.05)


@pytest.fixture
def analysis_types(monkeypatch) -> list:
    """(function, numba types of its arguments) of each frame-analysis call, in order."""
    seen = []
    for name in ("lpc_frames", "voicing_frames"):
        fn = getattr(frame_analysis, name)

        def recording(*args, _fn=fn, _name=name):
            seen.append((_name, tuple(numba.typeof(a) for a in args)))
            return _fn(*args)
        monkeypatch.setattr(frame_analysis, name, recording)
    return seen


def _stream(session: GenerationSession, mel: np.ndarray) -> np.ndarray:
    """A client's stream: frames from bytes (read-only), three hops."""
    source = StreamedMel(CONFIG, len(mel))
    for row in mel:
        source.append(np.frombuffer(row.astype("<f4").tobytes(), np.float32)[None])
    source.end()
    session.open(1, seed=7, mel=source)
    return session.generate([1], 3 * CONFIG.mel.hop_length)[0]


def test_warm_compiles_what_a_request_calls_and_leaves_no_trace(analysis_types):
    model = random_model(CONFIG, seed=2)
    t = np.arange(40 * CONFIG.mel.hop_length) / CONFIG.sample_rate
    mel = mel_from_audio(0.1 * np.sin(2 * np.pi * 180 * t), CONFIG)
    cold = _stream(GenerationSession(TorchBackend(model), 2), mel)

    session = GenerationSession(TorchBackend(model), 2)
    analysis_types.clear()
    session.warm()
    warmed = set(analysis_types)
    assert {name for name, _ in warmed} == {"lpc_frames", "voicing_frames"}
    assert not session.slots and not session.state.live.any()
    analysis_types.clear()
    np.testing.assert_array_equal(_stream(session, mel), cold)
    assert analysis_types and set(analysis_types) <= warmed, set(analysis_types) - warmed
