"""The triton kernel from history-primed rings, against the torch backend and the forward.

A stream opened with history has its rings filled by `GenerationState.open_slot` (shared
code) at columns `offset + t % span`; the kernel must read and write the same columns. From
zeroed rings at position 0 a kernel that reads and writes every ring one column off gives
the same logits (the shift is invisible), so these tests prime every slot with history, at
positions that are not multiples of the ring lengths, and teacher-force long enough that
rings wrap within the test. tests/generation/triton/test_triton_sabotage.py proves that
they fail on such bugs.

The config-B-shaped check (2 stacks x dilations 1..512, residual 64, skip 128, 256
classes, fp32 and fp16) is the GPU's full-size check, run by scripts/gpu-check: a few
steps in the interpreter, 1,100 (every ring wraps) on CUDA.
"""

from __future__ import annotations

import copy
import importlib.util
from dataclasses import replace

import numpy as np
import pytest
import torch

if importlib.util.find_spec("triton") is None:      # see test_triton_backend.py
    pytest.skip("triton is not installed", allow_module_level=True)

from tests.generation.triton.test_triton_backend import DEVICE, SMALL, _rows  # noqa: E402
from tests.generation.triton.test_triton_options import option_config  # noqa: E402
from tests.helpers.tiny_models import random_model  # noqa: E402
from wavenet_core.generation import TorchBackend  # noqa: E402
from wavenet_core.generation.packing import pack_weights  # noqa: E402
from wavenet_core.generation.triton import shape as triton_shape  # noqa: E402
from wavenet_core.generation.triton.backend import TritonBackend  # noqa: E402
from wavenet_core.generation.triton.packed_forward import packed_forward  # noqa: E402
from wavenet_core.generation.triton.shape import ring_period  # noqa: E402
from wavenet_core.model.config import CONFIG_B  # noqa: E402

# name -> (config, history lengths of the two slots, teacher-forced steps): positions not
# multiples of any ring length (spans 1, 3, 2 and 3, 9), more steps than the longest ring
PRIMED = {"kernel 2": (SMALL, (8, 12), 7), "kernel 4": (option_config("kernel4"), (11, 15), 10)}
B_HISTORIES = (2100, 2345)          # past the receptive field (2,047): every ring full
B_STEPS = 1100 if DEVICE == "cuda" else 6
B_FP16_TOLERANCE = 1e-2             # kernel vs emulated fp16 (summation order, see below)


def primed_gap(config, histories, steps, precision="fp32", kernel=None) -> float:
    """Largest |triton - torch| of the teacher-forced logits of two slots primed with
    histories of different lengths (codes, mel rows, speakers; length 0: zeroed rings at
    position 0); `kernel` replaces the backend's (tests/helpers/kernel_mutants.py)."""
    model = random_model(config, seed=7)
    rng = np.random.default_rng(3)
    m = config.mel_channels
    slots, speakers = [3, 1], [2 % max(1, config.num_speakers), 1 % max(1, config.num_speakers)]
    primes = [dict(history=rng.integers(0, config.classes, h), speaker=s,
                   history_local=_rows(1, h - 1, m, h)[0] if m and h else None)
              for h, s in zip(histories, speakers)]
    codes = rng.integers(0, config.classes, (2, steps))
    rows = _rows(2, steps, m, 5) if m else None
    triton_backend = TritonBackend(model, DEVICE, precision=precision)
    if kernel is not None:
        triton_backend.kernel = kernel
    out = []
    for backend in (triton_backend, TorchBackend(copy.deepcopy(model).cpu(), "cpu")):
        state = backend.new_state(4)
        for slot, prime in zip(slots, primes):
            backend.open_slot(state, slot, **prime)
        if backend is triton_backend:
            out.append(backend.teacher_force(state, slots, codes, rows).cpu().numpy())
            assert state.positions[slots].tolist() == [max(h - 1, 0) + steps for h in histories]
        else:
            out.append(torch.stack([backend.step_logits(
                state, slots, torch.from_numpy(codes[:, t]),
                None if rows is None else torch.from_numpy(rows[:, t]))
                for t in range(steps)], 1).numpy())
    return float(np.abs(out[0] - out[1]).max())


@pytest.mark.parametrize("name", list(PRIMED))
def test_primed_rings_give_the_torch_backends_logits(name):
    config, histories, steps = PRIMED[name]
    assert primed_gap(config, histories, steps) < 1e-4


def test_ring_period_is_the_ring_lengths_lcm_while_it_fits_int32():
    """The kernel takes pos % ring_period once per sample (int32 ring columns after it;
    a mask where it is a power of two, as for config B)."""
    assert ring_period(CONFIG_B) == 512
    assert ring_period(PRIMED["kernel 2"][0]) == 6 and ring_period(PRIMED["kernel 4"][0]) == 9
    primes = (7, 11, 13, 17, 19, 23, 29, 31, 37)
    huge = replace(SMALL, layers_per_stack=len(primes), dilation_cycle=primes)
    assert ring_period(huge) == 0                    # their product > 2**30


def test_primed_rings_without_a_ring_period(monkeypatch):
    """Past int32 (ring_period 0) the kernel takes pos % span per layer in int64."""
    monkeypatch.setattr(triton_shape, "ring_period", lambda config: 0)
    config, histories, steps = PRIMED["kernel 2"]
    assert primed_gap(config, histories, steps) < 1e-4


def test_primed_rings_with_the_ring_write_inside_the_layer_loop(monkeypatch):
    """These small one-block configs run the pipelined layer loop (x(t) staged, written
    into the rings after the loop); with layer_stages 1 (config A's kernel) the loop
    writes each x(t) over the oldest tap after a barrier. Both from primed rings."""
    for config, _, _ in PRIMED.values():
        assert triton_shape.layer_stages(config, "fp32", 8) > 1
    monkeypatch.setattr(triton_shape, "layer_stages", lambda *args: 1)
    config, histories, steps = PRIMED["kernel 4"]
    assert primed_gap(config, histories, steps) < 1e-4


def test_fused_gate_sums_as_two_dots_per_tap(monkeypatch):
    """fp16 one-block kernels add filter and gate in one dot per tap into an accumulator
    interleaving both (shape.fused_gate), each column summed as two dots per tap sum
    it: in the interpreter bitwise the two-dot kernel's logits (kernel 4: younger taps
    too). Filter and gate swapped at the split fails it; the bias added after the taps
    instead of before passed it too (rounding order rarely shows at this size). On a GPU
    the mma's own accumulation order may differ in the last bits."""
    config, _, steps = PRIMED["kernel 4"]
    model = random_model(config, seed=7)
    codes = np.random.default_rng(3).integers(0, config.classes, (2, steps))
    rows = _rows(2, steps, config.mel_channels, 5) if config.mel_channels else None
    out = []
    for fused in (True, False):
        monkeypatch.setattr(triton_shape, "fused_gate", lambda *args, fused=fused: fused)
        backend = TritonBackend(model, DEVICE, precision="fp16")
        state = backend.new_state(2)
        for slot in (0, 1):
            backend.open_slot(state, slot)
        out.append(backend.teacher_force(state, [0, 1], codes, rows).cpu().numpy())
    if DEVICE == "cuda":
        assert np.abs(out[0] - out[1]).max() < 1e-2
    else:
        assert np.array_equal(out[0], out[1])


def config_b_gaps(precision: str, kernel=None) -> tuple[float, float]:
    """Config B (no mel, no speakers) teacher-forced from two primed slots: the largest
    gap of the kernel's logits to the float32 forward and to the emulated forward of its
    precision (`packed_forward`, fp16 roundings where the kernel rounds)."""
    model = random_model(CONFIG_B, seed=1)
    rng = np.random.default_rng(0)
    longest = max(B_HISTORIES)
    codes = rng.integers(0, CONFIG_B.classes, (2, longest - 1 + B_STEPS))
    backend = TritonBackend(model, DEVICE, precision=precision)
    if kernel is not None:
        backend.kernel = kernel
    state = backend.new_state(2)
    forced = []
    for slot, h in enumerate(B_HISTORIES):
        backend.open_slot(state, slot, history=codes[slot, :h])
        forced.append(codes[slot, h - 1:h - 1 + B_STEPS])
    got = backend.teacher_force(state, [0, 1], np.stack(forced)).cpu().numpy()
    weights = pack_weights(model)
    gaps = []
    for fp16 in (False, precision == "fp16"):
        for slot, h in enumerate(B_HISTORIES):
            whole = torch.from_numpy(codes[slot:slot + 1, :h - 1 + B_STEPS]).to(backend.device)
            with torch.no_grad():
                ref = packed_forward(weights, CONFIG_B.dilations, whole, None, None, fp16=fp16)
            ref = ref[0, :, -B_STEPS:].T.cpu().numpy()
            gaps.append((fp16, float(np.abs(got[slot] - ref).max())))
    return (max(g for f, g in gaps if not f),
            max(g for f, g in gaps if f == (precision == "fp16")))


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_config_b_teacher_forced_from_primed_rings(precision):
    """fp32 within 1e-4 of the forward; fp16 within B_FP16_TOLERANCE of the emulated fp16
    forward (an fp32 value on a float16 rounding boundary may round either way, the kernel
    summing in another order: one fp16 ulp of one dot input) and near fp32."""
    to_fp32, to_own = config_b_gaps(precision)
    if precision == "fp32":
        assert to_fp32 < 1e-4
    else:
        assert to_own < B_FP16_TOLERANCE
        assert 0 < to_fp32 < 0.05
