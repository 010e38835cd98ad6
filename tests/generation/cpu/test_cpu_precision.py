"""Reduced-precision weights and the multi-core split of the compiled CPU backend.

Each precision's kernel must equal a float64 forward that uses the same rounded weights;
a call split across threads must be bitwise one thread's; `auto` must follow its rule.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.cpu_reference import (
    assert_matches_reference,
    rounded_model,
    teacher_forced_rows,
)
from tests.helpers.models import configs, random_inputs, random_model
from wavenet_core.audio.wav import read_wav
from wavenet_core.bench.precision_cost import kernel_bits
from wavenet_core.generation.cpu.backend import CpuBackend
from wavenet_core.generation.cpu.split import SplitChoice, SplitChoices
from wavenet_core.generation.cpu.sync import SPLIT_SUPPORTED
from wavenet_core.generation.cpu.weights import bf16_bits, encode_panels, int8_codes, rounded
from wavenet_core.generation.precision import cpu_candidates, native_precisions
from wavenet_core.generation.registry import make_backend
from wavenet_core.model.config import WaveNetConfig
from wavenet_core.training.data import fixed_batches
from wavenet_core.training.train import validation_bits
from wavenet_core.training.utterance import make_utterance

PRECISIONS = ("fp32", "bf16", "int8", "bf16a", "int8a")
MEL_SPEAKERS = WaveNetConfig(layers_per_stack=3, stacks=2, dilation_cycle=(1, 3, 5),
                             residual_channels=40, skip_channels=72, classes=256,
                             mel_channels=5, num_speakers=3, speaker_channels=4)


# -- weight formats ------------------------------------------------------------------------

def test_bf16_is_round_to_nearest_even_and_int8_within_half_a_step():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((37, 48)).astype(np.float32) * 3
    as_bf16 = torch.from_numpy(w).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(rounded(w, "bf16"), as_bf16)
    codes, scale = int8_codes(w)
    assert np.abs(codes).max() == 127
    assert np.all(np.abs(rounded(w, "int8") - w) <= scale / 2 + 1e-7)
    np.testing.assert_array_equal(rounded(w, "fp32"), w)


@pytest.mark.parametrize("width", [16, 48, 64, 144])
def test_bf16_panels_interleave_pairs_within_full_panels(width):
    w = np.random.default_rng(width).standard_normal((5, width)).astype(np.float32)
    flat, scales = encode_panels(w, "bf16")
    assert scales.size == 0 and flat.dtype == np.uint16 and flat.size == w.size
    bits = bf16_bits(w)
    full = width // 64
    for panel in range(full):
        block = flat[panel * 5 * 64:(panel + 1) * 5 * 64].reshape(5, 2, 16, 2)
        for half in range(2):
            for lane in range(16):
                col = panel * 64 + 32 * half + lane
                np.testing.assert_array_equal(block[:, half, lane, 0], bits[:, col])
                np.testing.assert_array_equal(block[:, half, lane, 1], bits[:, col + 16])
    tail = flat[full * 5 * 64:].reshape(5, -1)
    np.testing.assert_array_equal(tail, bits[:, full * 64:])


# -- same logits as a float64 reference with the same rounded weights -----------------------

@settings(max_examples=10, deadline=None)
@given(config=configs(), precision=st.sampled_from(PRECISIONS), rows=st.integers(1, 11),
       threads=st.integers(1, 3))
def test_each_precision_equals_a_float64_forward_with_the_same_rounded_weights(
        config, precision, rows, threads):
    model = random_model(config)
    ref = rounded_model(model, precision)
    field = config.receptive_field
    logits, streams = teacher_forced_rows(model, precision, rows, threads, field + 12)
    for r, (c, loc, speaker) in enumerate(streams):
        with torch.no_grad():
            full = ref(c, None if loc is None else loc.double(), speaker)[0].T.numpy()
        assert_matches_reference(logits[r, field - 1:], full, precision,
                                 f"{precision=} {threads=} row {r}")


def test_reduced_precision_changes_the_logits_a_little():
    """The rounding is real (not fp32 under another name) and small."""
    model = random_model(MEL_SPEAKERS, seed=2)
    codes, local, speaker = random_inputs(MEL_SPEAKERS, 60)
    out = {}
    for precision in PRECISIONS:
        backend = CpuBackend(model, threads=1, precision=precision)
        state = backend.new_state(1)
        backend.open_slot(state, 0, speaker=int(speaker))
        out[precision] = backend.teacher_force(state, [0], codes.numpy(), local[0].T[None].numpy())
    for precision in PRECISIONS[1:]:
        diff = np.abs(out[precision] - out["fp32"]).max()
        assert 1e-5 < diff < 0.5, (precision, diff)


# -- one stream on several cores -------------------------------------------------------------

@pytest.mark.skipif(not SPLIT_SUPPORTED, reason="split mode needs x86-64 Linux")
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("rows,threads", [(1, 2), (1, 3), (2, 4), (3, 4), (2, 2), (5, 3)])
def test_split_across_threads_is_bitwise_one_thread(precision, rows, threads):
    model = random_model(MEL_SPEAKERS, seed=5)
    # core_cache=0: as for a model larger than a core's L2, where any number of slots splits
    backend = CpuBackend(model, threads=threads, precision=precision, split="always",
                         core_cache=0)
    assert backend.split_threads(rows) == threads
    solo = CpuBackend(model, threads=1, precision=precision)
    local = np.random.default_rng(rows).standard_normal((rows, 150, 5)).astype(np.float32)
    results = []
    for b in (solo, backend):
        state = b.new_state(rows)
        for slot in range(rows):
            b.open_slot(state, slot, seed=slot + 10, temperature=[0.0, 0.8, 1.0][slot % 3],
                        speaker=slot % 3, history=np.arange(20) % 256,
                        history_local=np.ones((19, 5), np.float32))
        codes = np.concatenate([b.generate(state, list(range(rows)), k, local[:, a:a + k])
                                for a, k in ((0, 70), (70, 80))], axis=1)
        forced = b.teacher_force(state, list(range(rows)), codes[:, :40], local[:, :40])
        results.append((codes, forced, state.ring.clone(), state.positions.clone()))
    (c1, f1, r1, p1), (c2, f2, r2, p2) = results
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(f1, f2)
    assert torch.equal(r1, r2) and torch.equal(p1, p2)


@pytest.mark.parametrize("precision", PRECISIONS[1:])
def test_stream_is_bitwise_identical_alone_or_beside_others(precision):
    model = random_model(MEL_SPEAKERS, seed=3)
    local = np.random.default_rng(1).standard_normal((16, 120, 5)).astype(np.float32)
    alone = CpuBackend(model, threads=1, precision=precision)
    state = alone.new_state(1)
    alone.open_slot(state, 0, seed=77, temperature=0.9, speaker=2)
    expected = alone.generate(state, [0], 120, local[7:8])[0]
    for threads, chunks in ((2, (5, 64, 51)), (3, (120,))):
        backend = CpuBackend(model, threads=threads, precision=precision)
        state = backend.new_state(16)
        for slot in range(16):
            if slot == 9:
                backend.open_slot(state, 9, seed=77, temperature=0.9, speaker=2)
            else:
                backend.open_slot(state, slot, seed=slot, temperature=1.0, speaker=slot % 3)
        slots = [9] + [s for s in range(16) if s != 9]
        mel = np.concatenate([local[7:8], np.delete(local, 7, axis=0)])
        parts, done = [], 0
        for k in chunks:
            parts.append(backend.generate(state, slots, k, mel[:, done:done + k]))
            done += k
        np.testing.assert_array_equal(np.concatenate(parts, axis=1)[0], expected)


def test_auto_split_uses_the_faster_mode_and_keeps_measuring_the_other():
    choice = SplitChoice()
    assert choice.pick(2) == 2                  # nothing measured yet: the team first
    choice.observe(2, 1000.0)
    assert choice.pick(2) == 1                  # then one thread
    choice.observe(1, 3000.0)

    def run(calls, rates):
        picks = []
        for _ in range(calls):
            parts = choice.pick(2)
            choice.observe(parts, rates[parts])
            picks.append(parts)
        return picks

    picks = run(300, {1: 3000.0, 2: 1000.0})
    assert picks.count(1) > 290 and picks.count(2) >= 3       # mostly the faster
    # 3x slower: retried every (3 - 1) / 2% = 100th call, so exploring costs 2%
    assert choice.explore_every == 100
    picks = run(300, {1: 3000.0, 2: 9000.0})                  # the team's cores came closer
    switched = picks.index(2)
    assert switched <= 100                                    # the next retry comes soon
    after = picks[switched + 1:]
    assert after.count(1) <= 3 and after[-100:].count(2) >= 98   # and one win switches
    assert choice.explore_every == 100                        # now one thread is 3x slower


def test_many_slots_split_only_a_model_larger_than_a_core_cache():
    model = random_model(MEL_SPEAKERS, seed=5)
    nbytes = CpuBackend(model, threads=1).weight_bytes(1)
    small = CpuBackend(model, threads=2, core_cache=nbytes)          # fits: group mode
    large = CpuBackend(model, threads=2, core_cache=nbytes - 1)      # overflows: split
    assert not small.streams_weights and large.streams_weights
    assert [small.split_threads(n) for n in (1, 2, 16)] == [2, 1, 1]
    assert [large.split_threads(n) for n in (1, 2, 16)] == [2, 2, 2]
    never = CpuBackend(model, threads=2, split="never", core_cache=0)
    assert [never.split_threads(n) for n in (1, 16)] == [1, 1]
    assert CpuBackend(model, threads=1, core_cache=0).split_threads(16) == 1
    # split, a thread reads its share (thread 0: one of the gate's three 16-vectors)
    assert large.weight_bytes(16) < nbytes == small.weight_bytes(16)


def test_auto_split_chooses_per_call_length_and_slots():
    # Short calls pay the handoff and long ones gain from the team: what a short call
    # measured must not decide for long ones; nor one stream's for sixteen.
    choices = SplitChoices()
    short, long = choices.for_call(16), choices.for_call(4000)
    assert choices.for_call(20) is short and choices.for_call(3000) is long
    assert short is not long
    assert choices.for_call(4000, 16) is choices.for_call(3000, 31) is not long
    for _ in range(50):
        for choice, rates in ((short, {1: 9000.0, 2: 1000.0}), (long, {1: 3000.0, 2: 9000.0})):
            parts = choice.pick(2)
            choice.observe(parts, rates[parts])
    assert short.pick(2) == 1 or short.exploring == 2
    assert max(long.rate, key=long.rate.get) == 2 and max(short.rate, key=short.rate.get) == 1


def test_auto_split_gives_the_same_samples_as_one_thread():
    model = random_model(MEL_SPEAKERS, seed=6)
    local = np.random.default_rng(2).standard_normal((1, 400, 5)).astype(np.float32)
    out = []
    for backend in (CpuBackend(model, threads=1), CpuBackend(model, threads=2, split="auto")):
        state = backend.new_state(1)
        backend.open_slot(state, 0, seed=4, speaker=1)
        out.append(np.concatenate([backend.generate(state, [0], 20, local[:, a:a + 20])
                                   for a in range(0, 400, 20)], axis=1))
    np.testing.assert_array_equal(out[0], out[1])


# -- choosing a precision ------------------------------------------------------------------

def test_auto_takes_native_precisions_within_the_budget_only():
    flags = frozenset({"avx2", "avx512f", "avx512_bf16"})
    assert native_precisions(flags) == ["fp32", "bf16", "bf16a"]
    assert cpu_candidates({"bf16": 0.001, "int8": 0.001}, flags) == ["fp32", "bf16"]
    assert cpu_candidates({"bf16": 0.05}, flags) == ["fp32"]
    assert cpu_candidates({}, flags) == ["fp32"]
    every = frozenset({"avx512_bf16", "avx512_vnni"})
    assert cpu_candidates({"bf16": 0.01, "int8": 0.019}, every) == ["fp32", "bf16", "int8"]
    assert cpu_candidates({"bf16": 0.01, "int8": 0.03}, every) == ["fp32", "bf16"]
    # the dot formats: their own instructions, their own recorded costs
    costs = {"bf16": 0.01, "int8": 0.01, "bf16a": 0.015, "int8a": 0.021}
    assert cpu_candidates(costs, every) == ["fp32", "bf16", "int8", "bf16a"]
    assert cpu_candidates(costs, frozenset({"amx_bf16", "avx_vnni"})) == ["fp32", "bf16", "int8"]


def test_make_backend_precision_choices():
    model = random_model(MEL_SPEAKERS)
    assert make_backend(model, "cpu", "cpu", "int8").precision == "int8"
    assert make_backend(model, "cpu", "cpu", "auto").precision == "fp32"    # nothing recorded
    chosen = make_backend(model, "cpu", "cpu", "auto", {"bf16": 0.0, "int8": 0.0})
    assert chosen.precision in cpu_candidates({"bf16": 0.0, "int8": 0.0})
    with pytest.raises(ValueError, match="'torch' backend takes precision auto, fp32, not"):
        make_backend(model, "torch", "cpu", "bf16")
    with pytest.raises(ValueError, match="unknown precision"):
        make_backend(model, "cpu", "cpu", "fp8")
    with pytest.raises(ValueError, match="takes precision"):
        make_backend(model, "cpu", "cpu", "fp16")


def test_timing_the_candidates_runs_an_excitation_model_too():
    """`auto` times each candidate at load; an excitation model needs its rows there too
    (the bundled vocoder failed to load without them)."""
    from wavenet_core.generation.precision import fastest
    from wavenet_core.model.config import MelConfig

    config = WaveNetConfig(layers_per_stack=2, stacks=1, residual_channels=8, skip_channels=8,
                           mel_channels=20, mel=MelConfig(n_mels=20), excitation="lpc",
                           lpc_order=8)
    model = random_model(config)
    candidates = [CpuBackend(model, threads=1, precision=p) for p in ("fp32", "bf16")]
    assert fastest(candidates, steps=64) in candidates


def test_kernel_nll_equals_the_training_validation_nll(tiny_corpus):
    """The precision-cost measurement (teacher forcing through the kernel) is the NLL that
    training reports, for fp32."""
    config = WaveNetConfig(layers_per_stack=3, stacks=1, residual_channels=8, skip_channels=16,
                           mel_channels=80, num_speakers=2)
    model = random_model(config, seed=1)
    manifest = json.loads((tiny_corpus / "manifest.json").read_text())
    utts = [make_utterance(read_wav(tiny_corpus / u["path"], 16000)[0], u["speaker_id"],
                           config, config.receptive_field)
            for u in manifest["utterances"] if u["split"] == "valid"]
    batches = fixed_batches(utts, config, 3, 500)
    expected = validation_bits(model, batches, torch.device("cpu"))
    got = kernel_bits(CpuBackend(model, threads=2), batches)
    assert abs(got - expected) < 1e-4


def test_kernel_nll_of_an_excitation_model_equals_its_validation_nll(tiny_corpus):
    """An excitation model teacher-forced through the kernel, which makes every prediction
    itself from the decoded inputs and the windows' rows (mu-law audio, so the predictions
    are the windows' own), gives the NLL training reports, for fp32; bf16's cost is small."""
    from wavenet_core.audio.mulaw import mulaw_decode, mulaw_encode
    from wavenet_core.model.config import MelConfig

    config = WaveNetConfig(layers_per_stack=3, stacks=1, residual_channels=8, skip_channels=16,
                           mel_channels=20, mel=MelConfig(n_mels=20), excitation="lpc",
                           lpc_order=8, lpc_expansion=0.99)
    model = random_model(config, seed=2)
    manifest = json.loads((tiny_corpus / "manifest.json").read_text())
    utts = [make_utterance(mulaw_decode(mulaw_encode(read_wav(tiny_corpus / u["path"],
                                                              16000)[0])),
                           0, config, config.receptive_field)
            for u in manifest["utterances"] if u["split"] == "valid"]
    batches = fixed_batches(utts, config, 3, 500, rows=True)
    assert batches[0].lpc.shape == batches[0].prediction.shape + (8,)
    expected = validation_bits(model, batches, torch.device("cpu"))
    got = kernel_bits(CpuBackend(model, threads=2), batches)
    assert abs(got - expected) < 1e-4
    assert abs(kernel_bits(CpuBackend(model, threads=1, precision="bf16"), batches) - got) < 0.05
