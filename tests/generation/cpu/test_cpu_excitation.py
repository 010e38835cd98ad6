"""The compiled CPU backend on excitation models (docs/excitation.md): the rounded float64
forward's outputs and the torch backend's in every precision and split mode, bitwise batch
and chunk invariance with the LPC history carried in the state, generation as the torch
backend's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.cpu_reference import rounded_model
from tests.helpers.models import excitation_configs, random_model
from tests.helpers.tiny_models import excitation_inputs
from wavenet_core.audio.lpc import lpc_window
from wavenet_core.generation import TorchBackend
from wavenet_core.generation.cpu.backend import CpuBackend
from wavenet_core.generation.cpu.sync import SPLIT_SUPPORTED
from wavenet_core.generation.registry import make_backend
from wavenet_core.model.config import MelConfig, WaveNetConfig

PRECISIONS = ("fp32", "bf16", "int8")
CONFIG = WaveNetConfig(layers_per_stack=3, stacks=2, dilation_cycle=(1, 3, 2),
                       residual_channels=20, skip_channels=24, speaker_channels=4,
                       kernel_size=3, gate_channels=11, out_bias=True,
                       residual_scale=0.5 ** 0.5, mel_channels=4, num_speakers=3,
                       mel=MelConfig(n_mels=4, hop_length=8), mel_mean=-4.0,
                       excitation="lpc", lpc_order=10)


@settings(max_examples=10, deadline=None)
@given(config=excitation_configs(max_layers=3), precision=st.sampled_from(PRECISIONS),
       rows=st.integers(1, 6), threads=st.integers(1, 3))
def test_teacher_forced_outputs_equal_the_rounded_float64_forward_and_torch(
        config, precision, rows, threads):
    model = random_model(config)
    field = config.receptive_field
    length = field + 12
    backend = CpuBackend(model, threads=threads, precision=precision, split="always")
    state = backend.new_state(rows)
    streams = [excitation_inputs(config, length, seed=r) for r in range(rows)]
    for slot, s in enumerate(streams):
        backend.open_slot(state, slot, speaker=0 if s["speaker"] is None else int(s["speaker"]))
    outputs = backend.teacher_force(state, list(range(rows)),
                                    np.stack([s["x"][0].numpy() for s in streams]),
                                    np.stack([s["local"][0].T.numpy() for s in streams]),
                                    np.stack([s["lpc"][0].numpy() for s in streams]))
    ref = rounded_model(model, precision)
    for r, s in enumerate(streams):
        with torch.no_grad():
            full = ref(s["codes"], s["local"].double(), s["speaker"],
                       prediction=s["prediction"].double())[0].T.numpy()
        np.testing.assert_allclose(outputs[r, field - 1:], full, rtol=0, atol=1e-4,
                                   err_msg=f"{precision=} {threads=} row {r}")
    if precision == "fp32":           # and the torch backend, step by step
        tb = TorchBackend(model)
        tstate = tb.new_state(1)
        s = streams[0]
        tb.open_slot(tstate, 0, speaker=0 if s["speaker"] is None else int(s["speaker"]))
        steps = torch.cat([tb.step_logits(tstate, [0], s["x"][:, t], s["local"][:, :, t],
                                          lpc=s["lpc"][:, t]) for t in range(length)])
        np.testing.assert_allclose(outputs[0], steps.numpy(), rtol=0, atol=1e-4)
        np.testing.assert_array_equal(state.lpc_history[0].numpy(),
                                      tstate.lpc_history[0].numpy())


def _streams(n: int, steps: int):
    """n streams' mel rows [n, steps, M] and LPC rows [n, steps, order] (from real mels)."""
    hop = CONFIG.mel.hop_length
    mels = [np.random.default_rng(i).normal(-4, 2, (steps // hop + 2, 4)).astype(np.float32)
            for i in range(n)]
    from wavenet_core.generation.conditioning import local_from_mel

    return (np.stack([local_from_mel(m, CONFIG)[:steps] for m in mels]),
            np.stack([lpc_window(m, CONFIG, 0, steps) for m in mels]))


@pytest.mark.parametrize("precision", PRECISIONS)
def test_stream_is_bitwise_identical_alone_beside_others_and_split(precision):
    model = random_model(CONFIG, seed=3)
    steps = 120
    local, lpc = _streams(16, steps)
    alone = CpuBackend(model, threads=1, precision=precision)
    state = alone.new_state(1)
    alone.open_slot(state, 0, seed=77, temperature=0.9, speaker=1)
    expected = alone.generate(state, [0], steps, local[7:8], lpc[7:8])[0]
    expected_state = (state.ring[0].clone(), state.lpc_history[0].clone(),
                      float(state.next_value[0]), int(state.positions[0]))
    runs = [(2, 16, "never", (5, 64, 51)), (3, 16, "never", (120,))]
    if SPLIT_SUPPORTED:
        runs += [(2, 1, "always", (1, 60, 59)), (3, 2, "always", (33, 87))]
    for threads, n, split, chunks in runs:
        backend = CpuBackend(model, threads=threads, precision=precision, split=split)
        state = backend.new_state(n + 1)
        slots = [n] + list(range(n - 1))          # the stream under test in the last slot
        for r, slot in enumerate(slots):
            mine = r == 0
            backend.open_slot(state, slot, seed=77 if mine else slot, speaker=1 if mine else 0,
                              temperature=0.9 if mine else 1.0)
        mel = np.concatenate([local[7:8], local[:n - 1]])
        rows = np.concatenate([lpc[7:8], lpc[:n - 1]])
        parts, done = [], 0
        for k in chunks:
            parts.append(backend.generate(state, slots, k, mel[:, done:done + k],
                                          rows[:, done:done + k]))
            done += k
        got = np.concatenate(parts, axis=1)
        np.testing.assert_array_equal(got[0], expected, err_msg=f"{threads=} {n=} {chunks=}")
        assert torch.equal(state.ring[n], expected_state[0])
        assert torch.equal(state.lpc_history[n], expected_state[1])
        assert (float(state.next_value[n]), int(state.positions[n])) == expected_state[2:]
    assert len(set(expected.tolist())) > 10                   # it did sample


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_generation_matches_the_torch_backend(temperature):
    """Outputs differ in the last bits, so a draw on a boundary may differ: most seeded
    streams must match."""
    model = random_model(CONFIG, seed=1)
    steps = CONFIG.receptive_field + 40
    local, lpc = _streams(4, steps)
    matches = []
    for seed in range(4):
        runs = []
        for backend in (TorchBackend(model), CpuBackend(model, threads=2)):
            state = backend.new_state(2)
            backend.open_slot(state, 1, seed=seed, temperature=temperature, speaker=1)
            runs.append(np.concatenate([backend.generate(
                state, [1], k, local[seed:seed + 1, a:a + k], lpc[seed:seed + 1, a:a + k])[0]
                for a, k in ((0, 9), (9, steps - 9))]))
        matches.append(np.array_equal(runs[0], runs[1]))
    assert sum(matches) >= len(matches) - 1, matches


def test_auto_picks_cpu_and_the_rows_are_checked():
    model = random_model(CONFIG)
    backend = make_backend(model, "auto", "cpu")
    assert backend.name == "cpu" and backend.accepts_mel_frames
    state = backend.new_state(1)
    backend.open_slot(state, 0)
    with pytest.raises(ValueError, match="needs `lpc` rows"):
        backend.generate(state, [0], 4, np.zeros((1, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"lpc must be \[1, 4, 10\]"):
        backend.generate(state, [0], 4, np.zeros((1, 4, 4), np.float32),
                         np.zeros((1, 4, 3), np.float32))
