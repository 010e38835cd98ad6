"""The compiled CPU backend (numba): the invariants of docs/architecture.md section 3."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.models import configs, random_inputs, random_model
from wavenet_core.bench.timing import time_generation
from wavenet_core.generation import TorchBackend, naive_generate
from wavenet_core.generation.cpu import simd as cb
from wavenet_core.generation.cpu.backend import CpuBackend
from wavenet_core.generation.cpu.sampler import sample_row, sampler_words
from wavenet_core.generation.registry import make_backend
from wavenet_core.generation.sampling import counter_uniform, sample_codes
from wavenet_core.model.config import WaveNetConfig

HYPO = settings(max_examples=12, deadline=None)

MEL_SPEAKERS = WaveNetConfig(layers_per_stack=4, stacks=2, dilation_cycle=(1, 3, 2, 5),
                             residual_channels=24, skip_channels=40, classes=256,
                             mel_channels=5, num_speakers=3, speaker_channels=4)
PLAIN = WaveNetConfig(layers_per_stack=3, stacks=3, dilation_cycle=(1, 2, 6),
                      residual_channels=7, skip_channels=9, classes=17)


def _spk(speaker) -> int:
    return 0 if speaker is None else int(speaker)


# -- building blocks ---------------------------------------------------------------------

def test_counter_uniform_is_bitwise_the_reference():
    rng = np.random.default_rng(0)
    seeds = np.r_[rng.integers(0, 2**32, 500), [0, 1, 2**32 - 1]]
    counters = np.r_[rng.integers(0, 2**32, 500), [0, 2**31, 2**32 - 1]]
    expected = counter_uniform(torch.tensor(seeds), torch.tensor(counters)).numpy()
    got = np.array([cb.counter_uniform_one(s, c) for s, c in zip(seeds, counters)], np.float32)
    np.testing.assert_array_equal(got.view(np.int32), expected.view(np.int32))


@pytest.mark.parametrize("classes", [256, 17])
def test_in_kernel_sampler_follows_sample_codes(classes):
    """The same logits, temperatures, floors (voicing-shaped sampling) and uniforms give
    sample_codes' codes (the blocked cumulative sum, cpu/sampler.py, also with a padded last
    block), whatever the scratch held before."""
    rng = np.random.default_rng(1)
    n = 3000
    logits = (rng.standard_normal((n, classes)) * 3).astype(np.float32)
    logits[::7, 5] = logits[::7, 9] = 50.0                     # ties: greedy takes the first
    temperature = rng.choice([0.0, 0.6, 1.0, 1.7], n).astype(np.float32)
    floor = rng.choice([0.0, 0.0, 0.002, 0.02], n).astype(np.float32)
    uniforms = rng.random(n).astype(np.float32)
    uniforms[:3] = [0.0, np.float32(1 - 2**-24), 0.5]
    expected = sample_codes(torch.tensor(logits), torch.tensor(temperature),
                            torch.tensor(uniforms), torch.tensor(floor)).numpy()
    scratch = np.full(sampler_words(classes), np.nan, np.float32)
    got = np.array([sample_row(logits[i], temperature[i], floor[i], uniforms[i], scratch)
                    for i in range(n)])
    greedy = temperature == 0
    np.testing.assert_array_equal(got[greedy], expected[greedy])
    for cut in (floor == 0, floor > 0):               # exp differs from torch's by an ulp
        assert (got[cut] == expected[cut]).mean() > 0.995
    assert got.min() >= 0 and got.max() < classes


def test_fast_gate_and_exp_are_accurate():
    @cb.njit
    def apply(f, g):
        z, e = np.empty_like(f), np.empty_like(f)
        for i in range(f.shape[0]):
            z[i] = cb._gated(f[i], g[i])
            e[i] = cb._exp_neg(-abs(f[i]))
        return z, e

    grid = np.r_[np.linspace(-20, 20, 401), [0.0, 1e-30, -1e-8]].astype(np.float32)
    f, g = (a.ravel() for a in np.meshgrid(grid, grid))
    z, e = apply(f, g)
    f64, g64 = f.astype(np.float64), g.astype(np.float64)
    np.testing.assert_allclose(z, np.tanh(f64) / (1 + np.exp(-g64)), rtol=2e-6, atol=8e-7)
    np.testing.assert_allclose(e, np.exp(-np.abs(f64)), rtol=3e-7, atol=0)


# -- same logits as the full forward ------------------------------------------------------

@HYPO
@given(config=configs(), extra=st.integers(1, 12), rows=st.integers(1, 10))
def test_teacher_forced_logits_equal_full_forward(config, extra, rows):
    """Several slots teacher-forced together (8- and 4-row blocks and single rows, padded odd
    widths), each equal to the full forward of its own stream."""
    model = random_model(config)
    field = config.receptive_field
    length = 2 * field + extra
    backend = CpuBackend(model, threads=2)
    state = backend.new_state(rows + 2)
    slots = [rows + 1 - r for r in range(rows)]
    streams = [random_inputs(config, length, seed=r) for r in range(rows)]
    for slot, (_, _, speaker) in zip(slots, streams):
        backend.open_slot(state, slot, speaker=_spk(speaker))
    codes = np.stack([c[0].numpy() for c, _, _ in streams])
    local = None
    if config.local_conditioning:
        local = np.stack([loc[0].T.numpy() for _, loc, _ in streams])
    logits = backend.teacher_force(state, slots, codes, local)
    for r, (c, loc, speaker) in enumerate(streams):
        with torch.no_grad():
            full = model(c, loc, speaker)[0].T.numpy()
        np.testing.assert_allclose(logits[r, field - 1:], full, rtol=0, atol=1e-4)
    assert [int(state.positions[s]) for s in slots] == [length] * rows


@settings(max_examples=6, deadline=None)
@given(config=configs(max_layers=3))
def test_step_logits_equal_full_forward(config):
    model = random_model(config)
    field = config.receptive_field
    length = field + 10
    codes, local, speaker = random_inputs(config, length)
    backend = CpuBackend(model)
    state = backend.new_state(2)
    backend.open_slot(state, 1, speaker=_spk(speaker))
    steps = [backend.step_logits(state, [1], codes[:, t],
                                 None if local is None else local[:, :, t])
             for t in range(length)]
    fast = torch.cat(steps)
    assert fast.dtype == torch.float32 and fast.shape == (length, config.classes)
    with torch.no_grad():
        full = model(codes, local, speaker)[0].T
    torch.testing.assert_close(fast[field - 1:], full, rtol=0, atol=1e-4)


@settings(max_examples=8, deadline=None)
@given(config=configs(), history_len=st.integers(1, 40))
def test_primed_slot_equals_stepping_the_history(config, history_len):
    model = random_model(config)
    backend = CpuBackend(model)
    length = history_len + 6
    codes, local, speaker = random_inputs(config, length)
    loc = None if local is None else local[0].T.numpy()
    state = backend.new_state(2)
    backend.open_slot(state, 0, speaker=_spk(speaker))
    stepped = backend.teacher_force(state, [0], codes.numpy(), None if loc is None else loc[None])
    history_local = None if loc is None else loc[:history_len - 1]
    backend.open_slot(state, 1, history=codes[0, :history_len].numpy(),
                      history_local=history_local, speaker=_spk(speaker))
    assert int(state.positions[1]) == history_len - 1
    rest = codes[:, history_len - 1:].numpy()
    primed = backend.teacher_force(state, [1], rest,
                                   None if loc is None else loc[None, history_len - 1:])
    np.testing.assert_allclose(primed[0], stepped[0, history_len - 1:], rtol=0, atol=1e-5)


# -- bitwise batch invariance -------------------------------------------------------------

def _local(config, steps, seed):
    if not config.local_conditioning:
        return None
    rng = np.random.default_rng(seed)
    return rng.standard_normal((steps, config.mel_channels)).astype(np.float32)


def _generate_chunks(backend, state, slots, chunks, locals_):
    """Generate in the given chunk sizes; locals_[i] is slot i's [steps, M] (or None)."""
    out, done = [], 0
    for size in chunks:
        local = None
        if locals_[0] is not None:
            local = np.stack([loc[done:done + size] for loc in locals_])
        out.append(backend.generate(state, slots, size, local))
        done += size
    return np.concatenate(out, axis=1)


@pytest.mark.parametrize("config", [MEL_SPEAKERS, PLAIN], ids=["mel+speakers", "plain"])
@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_stream_is_bitwise_identical_alone_or_beside_15_others(config, temperature):
    model = random_model(config, seed=3)
    steps = 200
    speaker = config.num_speakers - 1 if config.global_conditioning else 0
    history = np.arange(30) % config.classes
    mine = dict(seed=1234, temperature=temperature, speaker=speaker, history=history,
                history_local=_local(config, len(history) - 1, 98))
    my_local = _local(config, steps, 99)

    alone = CpuBackend(model, threads=1)
    state = alone.new_state(1)
    alone.open_slot(state, 0, **mine)
    expected = _generate_chunks(alone, state, [0], [steps], [my_local])[0]
    expected_ring = state.ring[0].clone()

    for threads, chunks, order in [(2, [7, 64, 129], "shuffled"), (3, [200], "sorted"),
                                   (1, [1, 99, 100], "reversed")]:
        backend = CpuBackend(model, threads=threads)
        state = backend.new_state(16)
        rng = np.random.default_rng(threads)
        for slot in range(16):
            if slot == 7:
                backend.open_slot(state, 7, **mine)
            else:
                backend.open_slot(state, slot, seed=slot * 31 + 5,
                                  temperature=float(rng.choice([0.0, 0.5, 1.0, 1.3])),
                                  speaker=slot % max(1, config.num_speakers))
        slots = list(range(16))
        if order == "shuffled":
            rng.shuffle(slots)
        elif order == "reversed":
            slots.reverse()
        locals_ = [my_local if s == 7 else _local(config, steps, s) for s in slots]
        got = _generate_chunks(backend, state, slots, chunks, locals_)
        row = slots.index(7)
        np.testing.assert_array_equal(got[row], expected, err_msg=f"{threads=} {chunks=}")
        assert torch.equal(state.ring[7], expected_ring)
        assert int(state.positions[7]) == 29 + steps
        assert int(state.next_input[7]) == int(expected[-1])
        others = [got[r] for r in range(16) if slots[r] != 7]
        assert not all(np.array_equal(expected, o) for o in others)


def test_concurrent_calls_on_separate_states_do_not_interfere():
    model = random_model(MEL_SPEAKERS, seed=4)
    backend = CpuBackend(model, threads=2)
    local = np.stack([_local(MEL_SPEAKERS, 80, s) for s in range(5)])

    def run(seed):
        state = backend.new_state(5)
        for slot in range(5):
            backend.open_slot(state, slot, seed=seed + slot, speaker=slot % 3)
        return backend.generate(state, list(range(5)), 80, local)

    expected = [run(s) for s in (0, 100, 200)]
    results = {}
    threads = [threading.Thread(target=lambda s=s: results.__setitem__(s, run(s)))
               for s in (0, 100, 200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s, e in zip((0, 100, 200), expected):
        np.testing.assert_array_equal(results[s], e)


# -- against the other backends ------------------------------------------------------------

@settings(max_examples=6, deadline=None)
@given(config=configs(max_layers=3), temperature=st.sampled_from([0.0, 0.8, 1.0]))
def test_samples_match_the_torch_backend_and_naive_reference(config, temperature):
    """Logits differ in the last bits, so a draw on a CDF boundary may differ: most of the
    seeded streams must match the torch backend exactly (all of them, in practice)."""
    model = random_model(config)
    steps = config.receptive_field + 20
    speaker = config.num_speakers - 1 if config.global_conditioning else 0
    matches = []
    for seed in range(4):
        local = _local(config, steps, seed)
        runs = []
        for backend in (TorchBackend(model), CpuBackend(model)):
            state = backend.new_state(3)
            backend.open_slot(state, 2, seed=seed, temperature=temperature, speaker=speaker)
            runs.append(backend.generate(state, [2], steps,
                                         None if local is None else local[None])[0])
        matches.append(np.array_equal(runs[0], runs[1]))
        if seed == 0:
            naive = naive_generate(model, steps, seed=seed, temperature=temperature,
                                   speaker=speaker, local=local)
            matches.append(np.array_equal(naive, runs[1]))
    assert sum(matches) >= len(matches) - 1, matches


# -- interface -----------------------------------------------------------------------------

def test_interface_shapes_state_and_errors():
    model = random_model(MEL_SPEAKERS)
    backend = make_backend(model, "cpu", "cpu")
    assert isinstance(backend, CpuBackend)
    assert backend.name == "cpu" and backend.device == torch.device("cpu")
    backend.warmup()
    state = backend.new_state(4)
    backend.open_slot(state, 2, seed=3, speaker=1)
    backend.open_slot(state, 0, seed=4, speaker=2, temperature=0.0)
    codes = backend.generate(state, [2, 0], 5, torch.zeros(2, 5, 5))
    assert codes.dtype == np.int64 and codes.shape == (2, 5)
    assert ((codes >= 0) & (codes < MEL_SPEAKERS.classes)).all()
    assert state.positions.tolist() == [5, 0, 5, 0]
    assert int(state.next_input[2]) == codes[0, -1] and int(state.next_input[0]) == codes[1, -1]
    assert backend.generate(state, [2], 0, np.zeros((1, 0, 5), np.float32)).shape == (1, 0)
    with pytest.raises(ValueError, match="local"):
        backend.generate(state, [2], 3)
    with pytest.raises(ValueError, match="local"):
        backend.generate(state, [2], 3, np.zeros((1, 4, 5), np.float32))
    with pytest.raises(ValueError, match="once"):
        backend.generate(state, [2, 2], 1, np.zeros((2, 1, 5), np.float32))
    with pytest.raises(IndexError):
        backend.generate(state, [4], 1, np.zeros((1, 1, 5), np.float32))
    plain = CpuBackend(random_model(PLAIN))
    state = plain.new_state(1)
    plain.open_slot(state, 0)
    with pytest.raises(ValueError, match="no local"):
        plain.generate(state, [0], 2, np.zeros((1, 2, 5), np.float32))
    assert plain.generate(state, [0], 3).shape == (1, 3)
    with pytest.raises(ValueError, match="codes"):
        plain.teacher_force(state, [0], [[PLAIN.classes]])
    state.next_input[0] = -1
    with pytest.raises(ValueError, match="codes"):
        plain.generate(state, [0], 1)
    backend.close()


def test_time_generation_reports_samples_per_second():
    timing = time_generation(CpuBackend(random_model(PLAIN), threads=2), batch=3, num_steps=50,
                             repeats=2)
    assert len(timing.seconds) == len(timing.cpu_seconds) == 2
    assert timing.samples_per_s > 0 and timing.samples_per_cpu_s > 0
    assert timing.per_stream_samples_per_s == pytest.approx(timing.samples_per_s / 3)
