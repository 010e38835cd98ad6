"""The compiled CPU backend with voicing-shaped sampling (docs/voicing.md): per-sample
(temperature, floor) rows in every precision, bitwise batch and chunk invariance in group
and split mode, plain rows = no rows, and the torch backend's samples from the same
uniforms (tiny hypothesis configs, plain and excitation models)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.generation.test_shaping import random_rows
from tests.helpers.models import random_model, shaping_configs
from tests.helpers.voicing import speech_like_mel
from wavenet_core.audio.lpc import lpc_window
from wavenet_core.generation import TorchBackend
from wavenet_core.generation.conditioning import local_from_mel
from wavenet_core.generation.cpu.backend import CpuBackend
from wavenet_core.generation.cpu.sync import SPLIT_SUPPORTED
from wavenet_core.generation.shaping import plain_rows

PRECISIONS = ("fp32", "bf16", "int8")


def _inputs(config, n: int, steps: int):
    """n streams' conditioning: per-sample mel rows [n, steps, M] (the upsampler's where
    the model has one) and LPC rows [n, steps, order] (or None)."""
    hop = config.mel.hop_length
    mels = [speech_like_mel(config, steps // hop + 2, seed=i)[0] for i in range(n)]
    model_upsampler = None
    if config.upsample_scales:
        model_upsampler = random_model(config).upsampler
    local = np.stack([local_from_mel(m, config, model_upsampler)[:steps] for m in mels])
    lpc = (np.stack([lpc_window(m, config, 0, steps) for m in mels])
           if config.lpc_excitation else None)
    return local, lpc


def _generate(backend, n_slots, slots, seeds, temps, local, lpc, rows, chunks):
    state = backend.new_state(n_slots)
    for slot, seed, t in zip(slots, seeds, temps):
        backend.open_slot(state, slot, seed=seed, temperature=t)
    parts, done = [], 0
    for k in chunks:
        parts.append(backend.generate(state, slots, k, local[:, done:done + k],
                                      None if lpc is None else lpc[:, done:done + k],
                                      rows[:, done:done + k]))
        done += k
    return np.concatenate(parts, 1), state


@settings(max_examples=8, deadline=None)
@given(config=shaping_configs(), precision=st.sampled_from(PRECISIONS),
       split=st.booleans(), cut=st.integers(1, 40))
def test_a_shaped_stream_is_bitwise_the_same_alone_beside_others_and_chunked(
        config, precision, split, cut):
    model = random_model(config, seed=3)
    steps = 48
    n = 6
    local, lpc = _inputs(config, n, steps)
    rows = random_rows(n, steps, 1)
    rows[1] = plain_rows(0.9, steps)                # an unshaped stream beside
    alone = CpuBackend(model, threads=1, precision=precision)
    expected, state = _generate(alone, 1, [0], [77], [1.0], local[3:4],
                                None if lpc is None else lpc[3:4], rows[3:4], [steps])
    if split and SPLIT_SUPPORTED:
        backend, order = CpuBackend(model, threads=2, precision=precision, split="always"), [3]
    else:
        backend, order = CpuBackend(model, threads=2, precision=precision, split="never"), \
            [4, 3, 0, 5, 1, 2]
    slots = [5 - i for i in range(len(order))]          # stream order[i] in slot 5 - i
    seeds = [77 if i == 3 else i for i in order]
    temps = [1.0 if i == 3 else 0.9 for i in order]
    got, _ = _generate(backend, 6, slots, seeds, temps, local[order],
                       None if lpc is None else lpc[order], rows[order],
                       [cut, steps - cut] if cut < steps else [steps])
    np.testing.assert_array_equal(got[order.index(3)], expected[0])


@pytest.mark.parametrize("precision", PRECISIONS)
def test_plain_rows_are_bitwise_no_rows(precision):
    from tests.generation.test_shaping import SHAPED

    model = random_model(SHAPED, seed=2)
    backend = CpuBackend(model, threads=1, precision=precision)
    local, _ = _inputs(SHAPED, 2, 120)
    runs = []
    for rows in (None, np.stack([plain_rows(0.0, 120), plain_rows(0.8, 120)])):
        state = backend.new_state(2)
        backend.open_slot(state, 0, seed=1, temperature=0.0)
        backend.open_slot(state, 1, seed=1, temperature=0.8)
        runs.append(backend.generate(state, [0, 1], 120, local, shaping=rows))
    np.testing.assert_array_equal(runs[0], runs[1])
    with pytest.raises(ValueError, match=r"shaping must be \[2, 120, 2\]"):
        backend.generate(state, [0, 1], 120, local, shaping=np.zeros((2, 120, 3)))


@settings(max_examples=8, deadline=None)
@given(config=shaping_configs())
def test_the_samples_are_the_torch_backends_for_the_same_uniforms(config):
    """Outputs differ in the last bits (and exp by an ulp), so a draw on a boundary may
    differ and the streams part: most seeded streams must match."""
    model = random_model(config, seed=1)
    steps = config.receptive_field + 30
    local, lpc = _inputs(config, 4, steps)
    rows = random_rows(4, steps, 2)
    matches = []
    for i in range(4):
        runs = [_generate(backend, 2, [1], [i], [1.0], local[i:i + 1],
                          None if lpc is None else lpc[i:i + 1], rows[i:i + 1],
                          [9, steps - 9])[0][0]
                for backend in (TorchBackend(model), CpuBackend(model, threads=2))]
        matches.append(np.array_equal(*runs))
    assert sum(matches) >= len(matches) - 1, matches
