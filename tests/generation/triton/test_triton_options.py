"""The triton kernel with the version-2 options (docs/architecture.md section 7): kernel
size > 2, a z width of its own, residual/skip biases, residual scale, scalar input with
mixture or Gaussian output, a learned upsampler's per-sample rows.

Same checks as test_triton_backend.py, which covers the seed's design: teacher-forced
outputs against the torch backend (the per-step reference), in-kernel sampling against
the torch backend's, and a slot's samples bitwise the same alone or beside others. Runs
the compiled kernel on CUDA, the interpreter elsewhere (tiny configs, few samples).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

if importlib.util.find_spec("triton") is None:      # see test_triton_backend.py
    pytest.skip("triton is not installed", allow_module_level=True)

from tests.generation.triton.test_triton_backend import (  # noqa: E402
    DEVICE,
    FP16_LOGIT_TOLERANCE,
    _rows,
    _torch_teacher,
    check_alone_or_beside_others,
)
from tests.helpers.tiny_models import random_model  # noqa: E402
from wavenet_core.generation import TorchBackend  # noqa: E402
from wavenet_core.generation.mel_frames import MelFrames  # noqa: E402
from wavenet_core.generation.registry import make_backend  # noqa: E402
from wavenet_core.generation.triton.backend import TritonBackend  # noqa: E402
from wavenet_core.model.config import MelConfig, WaveNetConfig  # noqa: E402

try:                                 # scripts/gpu-check runs these without Hypothesis
    from hypothesis import given, settings

    from tests.helpers.models import configs
except ImportError:
    given = None

BASE = dict(layers_per_stack=2, stacks=1, dilation_cycle=(1, 3), residual_channels=5,
            skip_channels=9, classes=17, speaker_channels=2, mel=MelConfig(n_mels=3))
OPTIONS = {
    "kernel4": dict(kernel_size=4, gate_channels=7, out_bias=True, residual_scale=0.5 ** 0.5),
    "mol": dict(kernel_size=3, gate_channels=3, out_bias=True, residual_scale=0.5 ** 0.5,
                input_kind="scalar", output="mol", mixtures=3, log_scale_min=-2.0),
    "gaussian": dict(kernel_size=3, input_kind="scalar", output="gaussian",
                     log_scale_min=-2.0),
    "upsampler": dict(kernel_size=3, out_bias=True, input_kind="scalar", output="mol",
                      mixtures=2, upsample_scales=(2, 2),
                      mel=MelConfig(n_mels=3, hop_length=4)),
}


def option_config(name: str, conditioned: bool = True) -> WaveNetConfig:
    """A tiny config with option set `name`; `conditioned`: mel and speakers, else none
    (the upsampler needs the mel: it keeps it)."""
    cond = conditioned or name == "upsampler"
    standardise = dict(mel_mean=-2.0, mel_std=2.0) if cond and name != "upsampler" else {}
    return WaveNetConfig(**{**BASE, "mel_channels": 3 if cond else 0,
                            "num_speakers": 3 if conditioned else 0, **standardise,
                            **OPTIONS[name]})


def _inputs(config, shape, seed):
    """Codes, or samples in [-1, 1] for scalar input."""
    rng = np.random.default_rng(seed)
    if config.scalar_io:
        return rng.uniform(-1, 1, shape).astype(np.float32)
    return rng.integers(0, config.classes, shape)


def _teacher_gap(config, precision="fp32", steps=12):
    """Largest |triton - torch| of the teacher-forced outputs of three slots (one in a
    second program)."""
    model = random_model(config)
    slots = [17, 2, 9]
    spk = [s % max(1, config.num_speakers) for s in (2, 0, 1)]
    inputs = _inputs(config, (3, steps), 0)
    rows = _rows(3, steps, config.mel_channels, 1) if config.mel_channels else None
    backend = TritonBackend(model, DEVICE, precision=precision)
    state = backend.new_state(20)
    for slot, s in zip(slots, spk):
        backend.open_slot(state, slot, speaker=s)
    got = backend.teacher_force(state, slots, inputs, rows).cpu().numpy()
    assert got.shape == (3, steps, config.output_channels)
    assert state.positions[slots].tolist() == [steps] * 3
    return np.abs(got - _torch_teacher(model, slots, spk, inputs, rows)).max()


@pytest.mark.parametrize("conditioned", [False, True])
@pytest.mark.parametrize("name", list(OPTIONS))
def test_teacher_forced_outputs_equal_the_torch_backend(name, conditioned):
    assert _teacher_gap(option_config(name, conditioned)) < 1e-4


def test_random_option_configs_equal_the_torch_backend():
    if given is None:
        pytest.skip("needs Hypothesis")

    @settings(max_examples=4, deadline=None, derandomize=True)
    @given(config=configs(options=True, max_layers=2))
    def check(config):
        assert _teacher_gap(config, steps=6) < 1e-4

    check()


def test_fp16_with_options_is_near_fp32():
    gap = _teacher_gap(option_config("kernel4"), "fp16")
    assert 0 < gap < FP16_LOGIT_TOLERANCE


@pytest.mark.parametrize("name", ["kernel4", "mol", "gaussian"])
def test_samples_are_bitwise_the_same_alone_or_beside_others(name):
    config = option_config(name)
    backend = TritonBackend(random_model(config, seed=3), DEVICE, precision="fp32")
    mine = dict(seed=1234, temperature=0.9, speaker=2, history=_inputs(config, 8, 97),
                history_local=_rows(1, 7, 3, 98)[0])
    samples = check_alone_or_beside_others(backend, mine, _rows(1, 24, 3, 99),
                                           ((17, [7, 17]), (0, [1, 12, 11])), num_slots=18)
    assert len(set(samples.tolist())) > 4                    # not a constant stream


@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("name", ["mol", "gaussian"])
def test_in_kernel_scalar_sampling_gives_the_torch_backends_samples(name, temperature):
    """Same counter draws, same procedure: the samples fed back at every step agree within
    float32 noise (log / exp need not be bitwise the same everywhere)."""
    config = option_config(name)
    model = random_model(config, seed=4)
    with torch.no_grad():      # small log scales: few samples clamped at +-1
        model.logits_1x1.weight.mul_(0.1)
        model.logits_1x1.bias.zero_()
        model.logits_1x1.bias[2 * config.mixtures if name == "mol" else 1:] = -2.5
    rows = _rows(2, 16, 3, 7)
    runs = []
    for backend in (TorchBackend(model, "cpu"), TritonBackend(model, DEVICE, "fp32")):
        state = backend.new_state(3)
        for slot, seed in ((1, 5), (2, 6)):
            backend.open_slot(state, slot, seed=seed, temperature=temperature, speaker=slot)
        fed = []
        for k in range(16):
            backend.generate(state, [1, 2], 1, rows[:, k:k + 1])
            fed.append(state.next_value[[1, 2]].cpu().numpy())
        runs.append(np.stack(fed, 1))
    np.testing.assert_allclose(runs[1], runs[0], rtol=0, atol=1e-5)
    assert (np.abs(runs[0]) < 1).sum() > 24                # mostly unclamped
    if temperature:
        assert len(np.unique(runs[0].round(4))) > 24


def test_mel_frames_with_a_z_width_of_its_own():
    """The per-frame projection is z-wide (gate_channels != residual_channels)."""
    config = option_config("kernel4")
    backend = TritonBackend(random_model(config, seed=2), DEVICE, precision="fp32")
    window = MelFrames.window(_rows(1, 5, 3, 5)[0], 4, 3, 10)
    codes = _inputs(config, (1, 10), 1)
    out = []
    for local in (window, window.per_sample()):
        state = backend.new_state(1)
        backend.open_slot(state, 0, speaker=1)
        out.append(backend.teacher_force(state, [0], codes, local).cpu().numpy())
    np.testing.assert_allclose(out[0], out[1], rtol=0, atol=1e-5)


def test_options_interface():
    """auto refuses nothing it can run; a learned upsampler takes rows, not MelFrames."""
    model = random_model(option_config("upsampler"))
    backend = make_backend(model, "triton", DEVICE, precision="fp32")
    assert backend.name == "triton" and not backend.accepts_mel_frames
    state = backend.new_state(1)
    backend.open_slot(state, 0)
    frames = MelFrames.window(np.zeros((3, 3), np.float32), 4, 0, 2)
    with pytest.raises(ValueError, match="upsampler"):
        backend.generate(state, [0], 2, frames)
    codes = backend.generate(state, [0], 2, np.zeros((1, 2, 3), np.float32))
    assert codes.dtype == np.int64 and np.abs(codes).max() <= 32767
    assert TritonBackend(random_model(option_config("mol")), DEVICE).accepts_mel_frames
    # wider tiles run in channel blocks (test_triton_wide.py); the residual and skip
    # dots' 16-channel blocks of a 4096-wide residual take 258 KiB of shared memory in
    # fp32 (over SHARED_BYTES, 192 KiB: refused), 129 KiB in fp16
    wide = WaveNetConfig(layers_per_stack=1, stacks=1, residual_channels=4096,
                         gate_channels=16, skip_channels=16, kernel_size=3)
    with pytest.raises(ValueError, match="too wide"):
        TritonBackend(random_model(wide), DEVICE, precision="fp32")
    TritonBackend(random_model(wide), DEVICE, precision="fp16")
