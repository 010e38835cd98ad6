"""docs/architecture.md section 3 invariants: the PyTorch queue backend, the naive reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.models import configs, random_inputs, random_model
from wavenet_core.generation import TorchBackend, naive_generate
from wavenet_core.generation.capabilities import unsupported
from wavenet_core.generation.registry import make_backend
from wavenet_core.model.config import WaveNetConfig

HYPO = settings(max_examples=25, deadline=None)


def teacher_forced(backend, state, slot, codes, local, steps):
    """Step `steps` inputs of codes through `slot`; logits [steps, classes]."""
    out = []
    for t in range(steps):
        out.append(backend.step_logits(state, [slot], codes[:, t],
                                       None if local is None else local[:, :, t]))
    return torch.cat(out)


@HYPO
@given(config=configs(options=True), extra=st.integers(1, 20))
def test_teacher_forced_steps_equal_full_forward(config, extra):
    model = random_model(config)
    field = config.receptive_field
    length = field + extra + field  # more steps than the receptive field
    codes, local, speaker = random_inputs(config, length)
    with torch.no_grad():
        full = model(codes, local, speaker)[0].T                 # [length - field + 1, classes]
    backend = TorchBackend(model)
    state = backend.new_state(3)
    backend.open_slot(state, 1, speaker=0 if speaker is None else int(speaker))
    fast = teacher_forced(backend, state, 1, codes, local, length)
    torch.testing.assert_close(fast[field - 1:], full, rtol=0, atol=1e-4)


@HYPO
@given(config=configs(options=True), offsets=st.lists(st.integers(0, 30), min_size=2, max_size=4))
def test_slots_at_different_positions_equal_each_alone(config, offsets):
    model = random_model(config)
    backend = TorchBackend(model)
    steps = config.receptive_field + 10
    streams = [random_inputs(config, steps + max(offsets), seed=i) for i in range(len(offsets))]
    alone = []
    for codes, local, speaker in streams:
        state = backend.new_state(1)
        backend.open_slot(state, 0, speaker=0 if speaker is None else int(speaker))
        alone.append(teacher_forced(backend, state, 0, codes, local, steps + max(offsets)))
    # together: stream i joins late by offsets[i] steps, slots in reverse order
    state = backend.new_state(len(offsets) + 2)
    slots = {i: len(offsets) + 1 - i for i in range(len(offsets))}
    got = {i: [] for i in range(len(offsets))}
    for t in range(steps + 2 * max(offsets)):
        for i, off in enumerate(offsets):
            if t == off:
                spk = streams[i][2]
                backend.open_slot(state, slots[i], speaker=0 if spk is None else int(spk))
        active = [i for i, off in enumerate(offsets) if off <= t < off + steps + max(offsets)]
        if not active:
            continue
        codes = torch.stack([streams[i][0][0, t - offsets[i]] for i in active])
        local = None
        if config.local_conditioning:
            local = torch.stack([streams[i][1][0, :, t - offsets[i]] for i in active])
        logits = backend.step_logits(state, [slots[i] for i in active], codes, local)
        for row, i in enumerate(active):
            got[i].append(logits[row])
    for i in range(len(offsets)):
        torch.testing.assert_close(torch.stack(got[i]), alone[i], rtol=0, atol=1e-5)


@HYPO
@given(config=configs(options=True), history_len=st.integers(1, 40))
def test_priming_equals_stepping_the_history(config, history_len):
    model = random_model(config)
    backend = TorchBackend(model)
    length = history_len + 5
    codes, local, speaker = random_inputs(config, length)
    spk = 0 if speaker is None else int(speaker)
    state = backend.new_state(2)
    backend.open_slot(state, 0, speaker=spk)
    stepped = teacher_forced(backend, state, 0, codes, local, length)
    history = codes[0, :history_len].numpy()
    history_local = None if local is None else local[0, :, :history_len - 1].T.numpy()
    backend.open_slot(state, 1, history=history, history_local=history_local, speaker=spk)
    assert int(state.positions[1]) == history_len - 1
    fed = state.next_value if config.scalar_io else state.next_input
    assert float(fed[1]) == float(codes[0, history_len - 1])
    primed = teacher_forced(backend, state, 1, codes[:, history_len - 1:],
                            None if local is None else local[:, :, history_len - 1:],
                            length - history_len + 1)
    torch.testing.assert_close(primed, stepped[history_len - 1:], rtol=0, atol=1e-5)


@settings(max_examples=8, deadline=None)
@given(config=configs(max_layers=3, options=True), temperature=st.sampled_from([0.0, 0.7, 1.0]))
def test_queue_generation_equals_naive_reference(config, temperature):
    model = random_model(config)
    steps = config.receptive_field + 15
    local = (np.random.default_rng(0).standard_normal((steps, config.mel_channels))
             .astype(np.float32) if config.local_conditioning else None)
    speaker = config.num_speakers - 1 if config.global_conditioning else 0
    expected = naive_generate(model, steps, seed=11, temperature=temperature, speaker=speaker,
                              local=local)
    backend = TorchBackend(model)
    state = backend.new_state(2)
    backend.open_slot(state, 1, seed=11, temperature=temperature, speaker=speaker)
    first = backend.generate(state, [1], 7,
                             None if local is None else torch.tensor(local[None, :7]))
    rest = backend.generate(state, [1], steps - 7,
                            None if local is None else torch.tensor(local[None, 7:]))
    got = np.concatenate([first[0], rest[0]])
    if config.scalar_io:   # 16-bit codes of continuous samples: rounding may differ by one
        np.testing.assert_allclose(got, expected, rtol=0, atol=1)
    else:
        np.testing.assert_array_equal(got, expected)


def alone_and_among_fifteen(config: WaveNetConfig, speaker: int):
    """60 samples of seed 5 alone in slot 0, and in slot 9 beside 15 other streams
    (other seeds, the other speaker) -> (alone [60], together [16, 60])."""
    backend = TorchBackend(random_model(config))
    state = backend.new_state(16)
    backend.open_slot(state, 0, seed=5, speaker=speaker)
    alone = backend.generate(state, [0], 60)[0]
    state = backend.new_state(16)
    for slot in range(16):
        backend.open_slot(state, slot, seed=5 if slot == 9 else slot + 100,
                          speaker=speaker if slot == 9 else 1 - speaker % 2)
    return alone, backend.generate(state, list(range(16)), 60)


def test_generation_is_seeded_and_independent_of_neighbours():
    config = WaveNetConfig(layers_per_stack=3, stacks=2, residual_channels=8, skip_channels=8,
                           num_speakers=3)
    alone, together = alone_and_among_fifteen(config, speaker=2)
    np.testing.assert_array_equal(together[9], alone)
    assert not all(np.array_equal(together[9], together[s]) for s in range(16) if s != 9)


def test_conditioning_is_required_when_configured():
    config = WaveNetConfig(layers_per_stack=2, stacks=1, residual_channels=4, skip_channels=4,
                           mel_channels=3)
    backend = TorchBackend(random_model(config))
    state = backend.new_state(1)
    backend.open_slot(state, 0)
    with pytest.raises(ValueError, match="local"):
        backend.step_logits(state, [0], torch.tensor([1]))


def test_make_backend_names():
    model = random_model(WaveNetConfig(layers_per_stack=2, stacks=1, residual_channels=4,
                                       skip_channels=4))
    assert make_backend(model, "torch", "cpu").name == "torch"
    with pytest.raises(ValueError, match="unknown backend"):
        make_backend(model, "nope")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            make_backend(model, "cuda-graph", "cpu")


@settings(max_examples=10, deadline=None)
@given(config=configs(local=True), mean=st.floats(-8, 2), std=st.floats(0.2, 4))
def test_model_standardises_raw_log_mel(config, mean, std):
    """mel_mean / mel_std act inside the model: raw mel into a standardising model equals
    pre-standardised mel into the same weights with the identity standardisation."""
    import dataclasses

    scaled = dataclasses.replace(config, mel_mean=mean, mel_std=std)
    identity = dataclasses.replace(config, mel_mean=0.0, mel_std=1.0)
    model, plain = random_model(scaled), random_model(identity)
    codes, local, speaker = random_inputs(scaled, scaled.receptive_field + 5)
    with torch.no_grad():
        torch.testing.assert_close(model(codes, local, speaker),
                                   plain(codes, (local - mean) / std, speaker),
                                   rtol=1e-4, atol=1e-4)


def test_backends_without_the_options_refuse_them_and_auto_picks_one_that_runs_them():
    config = WaveNetConfig(layers_per_stack=2, stacks=1, residual_channels=4, skip_channels=4,
                           kernel_size=3, input_kind="scalar", output="mol", mixtures=2)
    model = random_model(config)
    with pytest.raises(ValueError, match=r"'triton' backend does not support kernel_size=3.*"
                                         r"output='mol'"):
        config.require_seed_design("triton")
    with pytest.raises(ValueError, match=r"support input_kind='scalar', output='mol' yet"):
        config.require_seed_design("x", ("kernel_size",))
    assert unsupported(config, "cpu") == []
    from tests.helpers.server import cpu_backend_available

    expected = "cpu" if cpu_backend_available() else "torch"
    assert make_backend(model, "auto", "cpu").name == expected


def test_mixture_streams_are_seeded_and_independent_of_neighbours():
    """Scalar outputs too: a stream's samples depend on its seed alone (the torch backend
    is not bitwise batch invariant, so the 16-bit codes may differ by one)."""
    config = WaveNetConfig(layers_per_stack=3, stacks=2, residual_channels=8, skip_channels=8,
                           kernel_size=3, gate_channels=5, out_bias=True, residual_scale=0.7,
                           input_kind="scalar", output="mol", mixtures=3, num_speakers=2)
    alone, together = alone_and_among_fifteen(config, speaker=1)
    np.testing.assert_allclose(together[9], alone, rtol=0, atol=1)
    assert len(set(alone.tolist())) > 10
    assert not any(np.allclose(together[9], together[s], atol=1) for s in range(16) if s != 9)
