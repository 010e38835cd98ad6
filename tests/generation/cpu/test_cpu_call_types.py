"""Every call of the compiled kernel has the numba types warm-up compiled (issue 32): a new
type compiles `run_rows` again in the middle of serving, seconds on a busy machine, with
every stream behind. A one-slot call on one thread once passed its gate bias as a
read-only broadcast view (`readonly array`), a type warm-up never made."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from tests.helpers.models import random_model
from wavenet_core.generation.cpu import backend as cpu_backend
from wavenet_core.generation.cpu.backend import CpuBackend
from wavenet_core.generation.cpu.sync import SPLIT_SUPPORTED
from wavenet_core.generation.mel_frames import MelFrames
from wavenet_core.model.config import MelConfig, WaveNetConfig

CONFIG = WaveNetConfig(layers_per_stack=3, stacks=2, residual_channels=16, skip_channels=24,
                       classes=64, mel_channels=8, mel=MelConfig(n_mels=8, hop_length=16))


@pytest.fixture
def call_types(monkeypatch) -> list:
    """The numba type of each kernel call's arguments, in call order."""
    seen, run = [], cpu_backend.run_rows

    def recording(dims, shard, call, team):
        seen.append(tuple(numba.typeof(x) for x in (dims, shard, call, team)))
        return run(dims, shard, call, team)

    monkeypatch.setattr(cpu_backend, "run_rows", recording)
    return seen


@pytest.mark.parametrize("split", ["never", "always"])
def test_every_call_has_warmups_types(call_types, split):
    if split == "always" and not SPLIT_SUPPORTED:
        pytest.skip("split mode needs x86-64 Linux")
    backend = CpuBackend(random_model(CONFIG, seed=5), threads=2, split=split)
    backend.warmup()
    warm = set(call_types)
    state = backend.new_state(4)
    for slot in range(4):
        backend.open_slot(state, slot, seed=slot)
    m = CONFIG.mel_channels
    for slots in ([2], [0, 1, 3], [1]):                 # one slot on one thread included
        n = len(slots)
        backend.generate(state, slots, 16, np.zeros((n, 16, m), np.float32))
        # frames as a server's client sends them: read-only bytes
        frames = np.frombuffer(np.zeros((n, 3, m), np.float32).tobytes(), np.float32)
        backend.generate(state, slots, 16, MelFrames(frames.reshape(n, 3, m),
                                                     np.zeros(n, np.int64), 16, 16))
    new = set(call_types) - warm
    assert not new, f"kernel calls with types warm-up never compiled: {new}"
