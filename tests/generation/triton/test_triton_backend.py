"""The triton backend: logits against the torch backend, bitwise batch invariance, fp16.

On a machine without CUDA the kernel runs in the Triton interpreter (tests/conftest.py
sets TRITON_INTERPRET=1 before any test: Triton reads it at its first import, which torch
itself may do). On a CUDA machine the same tests run the compiled kernel. The interpreter
costs ~5 ms per layer-step, so configs are tiny and runs a few dozen samples long.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

if importlib.util.find_spec("triton") is None:      # not importorskip: see the docstring
    pytest.skip("triton is not installed", allow_module_level=True)

from tests.helpers.tiny_models import random_model  # noqa: E402
from wavenet_core.audio.mel import mel_window  # noqa: E402
from wavenet_core.generation import TorchBackend  # noqa: E402
from wavenet_core.generation.mel_frames import MelFrames  # noqa: E402
from wavenet_core.generation.packing import pack_weights  # noqa: E402
from wavenet_core.generation.registry import make_backend  # noqa: E402
from wavenet_core.generation.triton.backend import TritonBackend  # noqa: E402
from wavenet_core.generation.triton.packed_forward import packed_forward  # noqa: E402
from wavenet_core.model.config import MelConfig, WaveNetConfig  # noqa: E402

try:                                 # scripts/gpu-check runs these without Hypothesis
    from hypothesis import given, settings

    from tests.helpers.models import configs
except ImportError:
    given = None

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
SMALL = WaveNetConfig(layers_per_stack=3, stacks=1, dilation_cycle=(1, 3, 2),
                      residual_channels=6, skip_channels=10, classes=17, mel_channels=3,
                      num_speakers=3, speaker_channels=2, mel_mean=-2.0, mel_std=2.0,
                      mel=MelConfig(n_mels=3))
FP16_LOGIT_TOLERANCE = 0.05     # fp16 vs fp32 logits of these random models (documented)


def _rows(n, steps, m, seed):
    return np.random.default_rng(seed).standard_normal((n, steps, m)).astype(np.float32)


def _torch_teacher(model, slots, speakers, codes, local):
    ref = TorchBackend(model, "cpu")
    state = ref.new_state(max(slots) + 1)
    for slot, spk in zip(slots, speakers):
        ref.open_slot(state, slot, speaker=spk)
    steps = [ref.step_logits(state, slots, torch.from_numpy(codes[:, t]),
                             None if local is None else torch.from_numpy(local[:, t]))
             for t in range(codes.shape[1])]
    return torch.stack(steps, 1).numpy()


@pytest.mark.parametrize("local,speakers", [(False, False), (True, False), (False, True),
                                            (True, True)])
def test_teacher_forced_logits_equal_the_torch_backend(local, speakers):
    """fp32, several slots (one in a second program), dilations not powers of two: random
    configs (Hypothesis) and a fixed one."""

    def check(config):
        model = random_model(config)
        slots = [17, 2, 9]
        spk = [s % max(1, config.num_speakers) for s in (2, 0, 1)]
        codes = np.random.default_rng(0).integers(0, config.classes, (3, 20))
        rows = _rows(3, 20, config.mel_channels, 1) if local else None
        backend = TritonBackend(model, DEVICE, precision="fp32")
        state = backend.new_state(20)
        for slot, s in zip(slots, spk):
            backend.open_slot(state, slot, speaker=s)
        got = backend.teacher_force(state, slots, codes, rows).cpu().numpy()
        expected = _torch_teacher(model, slots, spk, codes, rows)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
        assert state.positions[slots].tolist() == [20] * 3

    check(WaveNetConfig(layers_per_stack=3, stacks=2, dilation_cycle=(1, 3, 6),
                        residual_channels=5, skip_channels=9, classes=17,
                        mel_channels=3 if local else 0, num_speakers=3 if speakers else 0,
                        speaker_channels=2, mel_mean=-5.0, mel_std=3.0, mel=MelConfig(n_mels=3)))
    if given is not None:
        settings(max_examples=3, deadline=None, derandomize=True)(
            given(config=configs(local=local, speakers=speakers, max_layers=3))(check))()


def test_mel_frames_are_the_per_sample_rows_projected():
    """Interpolating projected frames in the kernel == projecting interpolated rows."""
    model = random_model(SMALL, seed=2)
    backend = TritonBackend(model, DEVICE, precision="fp32")
    mel = _rows(1, 9, 3, 5)[0]
    hop, start, steps = 4, 7, 25                     # phase 3, runs past the mel's end
    window = MelFrames.stack([MelFrames.window(mel, hop, start, steps)] * 2)
    np.testing.assert_allclose(window.per_sample()[0], mel_window(mel, hop, start, steps),
                               rtol=0, atol=1e-6)
    codes = np.random.default_rng(0).integers(0, SMALL.classes, (2, steps))
    out = []
    for local in (window, window.per_sample()):
        state = backend.new_state(2)
        for slot in range(2):
            backend.open_slot(state, slot, speaker=slot)
        out.append(backend.teacher_force(state, [0, 1], codes, local).cpu().numpy())
    np.testing.assert_allclose(out[0], out[1], rtol=0, atol=1e-5)


def _generate(backend, state, slots, chunks, rows):
    out, done = [], 0
    for k in chunks:
        out.append(backend.generate(state, slots, k, rows[:, done:done + k]))
        done += k
    return np.concatenate(out, 1)


def check_alone_or_beside_others(backend, mine: dict, my_rows, runs, num_slots=20):
    """A slot's samples, ring, position and next input are bitwise the same generated
    alone as in slot `slot` of `num_slots` (neighbours of other seeds, speakers and
    temperatures, rows in a random order), in chunks `chunks`, for each (slot, chunks) in
    `runs`. Returns the samples."""
    steps, m = my_rows.shape[1], my_rows.shape[2]
    state = backend.new_state(1)
    backend.open_slot(state, 0, **mine)
    expected = _generate(backend, state, [0], [steps], my_rows)[0]
    keep = (state.ring[0].clone(), state.next_input[0].clone(), state.next_value[0].clone())
    for slot, chunks in runs:
        state = backend.new_state(num_slots)
        for other in range(num_slots):
            if other == slot:
                backend.open_slot(state, slot, **mine)
            else:
                backend.open_slot(state, other, seed=other, speaker=other % 3,
                                  temperature=[0.0, 0.5, 1.0, 1.3][other % 4])
        order = list(np.random.default_rng(slot).permutation(num_slots))
        rows = _rows(num_slots, steps, m, slot)
        rows[order.index(slot)] = my_rows[0]
        got = _generate(backend, state, order, chunks, rows)
        np.testing.assert_array_equal(got[order.index(slot)], expected, err_msg=f"{slot=}")
        assert torch.equal(state.ring[slot], keep[0])
        assert torch.equal(state.next_input[slot], keep[1])
        assert torch.equal(state.next_value[slot], keep[2])
        assert int(state.positions[slot]) == len(mine["history"]) - 1 + steps
    return expected


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_codes_are_bitwise_the_same_alone_or_beside_others(temperature):
    backend = TritonBackend(random_model(SMALL, seed=3), DEVICE, precision="fp32")
    mine = dict(seed=1234, temperature=temperature, speaker=2,
                history=np.arange(12) % SMALL.classes, history_local=_rows(1, 11, 3, 98)[0])
    check_alone_or_beside_others(backend, mine, _rows(1, 40, 3, 99),
                                 ((17, [7, 33]), (0, [1, 20, 19])))


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_in_kernel_sampling_gives_the_torch_backends_codes(temperature):
    """Same RNG, same inverse-CDF rule: equal logits give equal codes (a draw exactly on
    a CDF boundary could differ by the logits' last bits: allow one stream in four)."""
    model = random_model(SMALL, seed=4)
    rows = _rows(1, 30, 3, 7)
    matches = []
    for seed in range(4):
        runs = []
        for backend in (TorchBackend(model, "cpu"), TritonBackend(model, DEVICE, "fp32")):
            state = backend.new_state(2)
            backend.open_slot(state, 1, seed=seed, temperature=temperature, speaker=1)
            runs.append(backend.generate(state, [1], 30, rows))
        matches.append(np.array_equal(*runs))
    assert sum(matches) >= 3, matches


def test_fp16_is_the_emulated_fp16_forward_and_near_fp32():
    """The kernel's fp16 path computes what `packed_forward(fp16=True)` computes (so the
    NLL cost measured with it is the kernel's), and stays near the fp32 logits."""
    model = random_model(SMALL, seed=5)
    codes = torch.randint(0, SMALL.classes, (2, 24), generator=torch.Generator().manual_seed(0))
    rows = _rows(2, 24, 3, 8)
    speakers = torch.tensor([1, 2])
    backend = TritonBackend(model, DEVICE, precision="fp16")
    state = backend.new_state(2)
    for slot in range(2):
        backend.open_slot(state, slot, speaker=int(speakers[slot]))
    got = backend.teacher_force(state, [0, 1], codes.numpy(), rows).cpu().numpy()
    w = pack_weights(model)
    local = torch.from_numpy(rows).transpose(1, 2)
    emulated = packed_forward(w, SMALL.dilations, codes, local, speakers, fp16=True)
    fp32 = packed_forward(w, SMALL.dilations, codes, local, speakers)
    with torch.no_grad():
        full = model(codes, local, speakers, pad=True)
    torch.testing.assert_close(fp32, full, rtol=0, atol=1e-4)
    # an fp32 value on a float16 rounding boundary may round either way (the kernel sums
    # in another order), moving one dot input by an fp16 ulp: hence 2e-3, not 1e-4
    np.testing.assert_allclose(got, emulated.transpose(1, 2).numpy(), rtol=0, atol=2e-3)
    gap = np.abs(got - fp32.transpose(1, 2).numpy()).max()
    assert 0 < gap < FP16_LOGIT_TOLERANCE


def test_interface_and_errors():
    model = random_model(SMALL)
    backend = make_backend(model, "triton", DEVICE, precision="fp32")
    assert isinstance(backend, TritonBackend) and backend.name == "triton"
    assert backend.precision == "fp32"
    state = backend.new_state(3)
    backend.open_slot(state, 2, seed=3, speaker=1)
    codes = backend.generate(state, [2], 3, torch.zeros(1, 3, 3))
    assert codes.dtype == np.int64 and codes.shape == (1, 3)
    assert state.positions.tolist() == [0, 0, 3]
    assert int(state.next_input[2]) == codes[0, -1]
    assert backend.generate(state, [2], 0, np.zeros((1, 0, 3), np.float32)).shape == (1, 0)
    with pytest.raises(ValueError, match="local"):
        backend.generate(state, [2], 3)
    with pytest.raises(ValueError, match="local"):
        backend.generate(state, [2], 3, np.zeros((1, 4, 3), np.float32))
    with pytest.raises(ValueError, match="once"):
        backend.generate(state, [2, 2], 1, np.zeros((2, 1, 3), np.float32))
    with pytest.raises(IndexError):
        backend.generate(state, [3], 1, np.zeros((1, 1, 3), np.float32))
    with pytest.raises(ValueError, match="codes"):
        backend.teacher_force(state, [2], [[SMALL.classes]], np.zeros((1, 1, 3), np.float32))
    with pytest.raises(ValueError, match="precision"):
        TritonBackend(model, DEVICE, precision="fp8")
    plain = TritonBackend(random_model(WaveNetConfig(layers_per_stack=2, stacks=1,
                                                     residual_channels=4, skip_channels=4,
                                                     classes=16)), DEVICE)
    state = plain.new_state(1)
    plain.open_slot(state, 0)
    with pytest.raises(ValueError, match="no local"):
        plain.generate(state, [0], 2, np.zeros((1, 2, 3), np.float32))
    assert plain.generate(state, [0], 2).shape == (1, 2)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU runs the compiled kernel above")
@pytest.mark.parametrize("extra", [(), ("--excitation", "--local", "--shaped")])
def test_kernel_compiles_for_an_h100_class_gpu_without_one(extra):
    """Triton's own compiler (no GPU needed) lowers the kernel to sm_90 machine code for
    config B in fp16, and with the excitation output and voicing-shaped sampling; its
    shared memory must fit an SM (227 KiB)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-m", "wavenet_core.generation.triton.aot",
                          "--config", "B", "--precision", "fp16", "--arch", "90", *extra],
                         capture_output=True, text=True, env=env, timeout=300, check=True)
    report = json.loads(out.stdout)
    assert report["cubin_bytes"] > 0
    assert 0 < report["shared_bytes"] <= 227 * 1024


def test_gpu_bench_rows_and_table_through_the_interpreter():
    """The GPU bench's whole path (limits, timings, rows, table) at toy sizes; on the CPU
    the kernel is interpreted, so only the shape of the result is checked."""
    from wavenet_core.bench.gpu import gpu_table, make_row, real_time_streams, run_gpu_benchmark

    tiny = WaveNetConfig(layers_per_stack=2, stacks=1, residual_channels=4, skip_channels=4,
                         classes=16)
    result = run_gpu_benchmark(("T",), (1, 2), steps=2, repeats=1, device=DEVICE,
                               model_configs={"T": tiny}, limit_sizes=(1, 64),
                               log=lambda _: None, cuda_graph=False)
    assert [(r["precision"], r["batch"]) for r in result["rows"]] == [
        ("fp32", 1), ("fp32", 2), ("fp16", 1), ("fp16", 2)]
    assert all(r["samples_per_s"] > 0 and r["bandwidth_fraction"] > 0 for r in result["rows"])
    table = gpu_table(result)
    assert len([line for line in table.splitlines() if line.startswith("| T |")]) == 4
    limits = {"copy_bytes_per_s": 1e12, "bf16_flops": 1e15}
    row = make_row("B", "triton", "fp16", 64, 64 * 20000.0, 16000, 10**6, 4, 10**6, limits)
    assert row.real_time and row.per_stream == 20000.0
    assert row.bandwidth_fraction == 4 * 20000.0 * 10**6 / 1e12
    assert row.compute_fraction == 10**6 * 64 * 20000.0 / 1e15
    slow = make_row("B", "triton", "fp16", 256, 256 * 9000.0, 16000, 1, 16, 1, limits)
    assert real_time_streams([row, slow]) == {"B/triton/fp16": 64}


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU this would be the full bench")
def test_wavenet_bench_gpu_command_runs_through_the_interpreter(capsys):
    from wavenet_cli.main import main

    assert main(["bench", "--gpu", "--device", "cpu", "--configs", "B", "--batches", "1",
                 "--steps", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {(r["config"], r["precision"], r["batch"]) for r in result["rows"]} == {
        ("B", "fp32", 1), ("B", "fp16", 1)}
    assert set(result["real_time_streams"]) == {"B/triton/fp32", "B/triton/fp16"}
