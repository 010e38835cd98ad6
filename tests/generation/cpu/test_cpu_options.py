"""The compiled CPU backend on the non-seed options (docs/architecture.md section 7): kernel
size, z width, out biases, residual scale, scalar input with mixture / Gaussian output and
a learned upsampler (outside the kernel). Same outputs as the torch backend and as a
float64 reference with each precision's rounded weights; bitwise batch and chunk
invariance in group and split mode; the in-kernel sampler follows sampling.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.cpu_reference import (
    STEPS,
    alone_then_together,
    rounded_model,
    teacher_forced_rows,
)
from tests.helpers.models import configs, random_model
from wavenet_core.generation import TorchBackend
from wavenet_core.generation.cpu.backend import CpuBackend
from wavenet_core.generation.cpu.scalar import sample_scalar_one
from wavenet_core.generation.cpu.sync import SPLIT_SUPPORTED
from wavenet_core.generation.mel_frames import MelFrames
from wavenet_core.generation.registry import make_backend
from wavenet_core.generation.sampling import sample_scalar
from wavenet_core.model.config import MelConfig, WaveNetConfig
from wavenet_core.model.layers import pointwise

PRECISIONS = ("fp32", "bf16", "int8")
SMALL = dict(layers_per_stack=3, stacks=2, dilation_cycle=(1, 3, 2), residual_channels=20,
             skip_channels=24, speaker_channels=4)
SOFTMAX = WaveNetConfig(**SMALL, classes=256, kernel_size=3, gate_channels=11, out_bias=True,
                        residual_scale=0.5 ** 0.5, mel_channels=4, num_speakers=3)
MOL = WaveNetConfig(**SMALL, kernel_size=4, gate_channels=36, out_bias=True,
                    residual_scale=0.5 ** 0.5, input_kind="scalar", output="mol", mixtures=3,
                    mel_channels=4, upsample_scales=(2, 2), mel=MelConfig(n_mels=4, hop_length=4))
GAUSSIAN = WaveNetConfig(**SMALL, out_bias=True, input_kind="scalar", output="gaussian",
                         num_speakers=2, log_scale_min=-3.0)
CASES = {"softmax": SOFTMAX, "mol": MOL, "gaussian": GAUSSIAN}


def _rows(config, n, steps, seed):
    """Per-sample mel rows [n, steps, M] (None without mel)."""
    if not config.local_conditioning:
        return None
    return np.random.default_rng(seed).standard_normal(
        (n, steps, config.mel_channels)).astype(np.float32)


def _float64_forward(ref, codes, local, speaker):
    """The reference's forward, scalar inputs in float64 too."""
    if ref.input_1x1 is not None:
        ref.input_vectors = lambda x, prediction=None: pointwise(x.double().unsqueeze(-1),
                                                                 ref.input_1x1)
    with torch.no_grad():
        return ref(codes, None if local is None else local.double(), speaker)[0].T.numpy()


# -- same outputs as the torch backend and a float64 reference ------------------------------

@settings(max_examples=12, deadline=None)
@given(config=configs(options=True, max_layers=3), precision=st.sampled_from(PRECISIONS),
       rows=st.integers(1, 9), threads=st.integers(1, 3))
def test_teacher_forced_outputs_equal_torch_and_the_rounded_float64_forward(
        config, precision, rows, threads):
    model = random_model(config)
    field = config.receptive_field
    length = field + 12
    outputs, streams = teacher_forced_rows(model, precision, rows, threads, length)
    assert outputs.shape == (rows, length, config.output_channels)
    ref = rounded_model(model, precision)
    for r, (c, loc, speaker) in enumerate(streams):
        full = _float64_forward(ref, c, loc, speaker)
        np.testing.assert_allclose(outputs[r, field - 1:], full, rtol=0, atol=1e-4,
                                   err_msg=f"{precision=} {threads=} row {r}")
    if precision == "fp32":           # and the torch backend, step by step
        torch_backend = TorchBackend(model)
        tstate = torch_backend.new_state(1)
        c, loc, speaker = streams[0]
        torch_backend.open_slot(tstate, 0, speaker=0 if speaker is None else int(speaker))
        steps = torch.cat([torch_backend.step_logits(
            tstate, [0], c[:, t], None if loc is None else loc[:, :, t]) for t in range(length)])
        np.testing.assert_allclose(outputs[0], steps.numpy(), rtol=0, atol=1e-4)


def test_in_kernel_scalar_sampler_follows_sample_scalar():
    rng = np.random.default_rng(0)
    n = 2000
    for config in (MOL, GAUSSIAN, WaveNetConfig(input_kind="scalar", output="mol", mixtures=1)):
        params = (rng.standard_normal((n, config.output_channels)) * 2).astype(np.float32)
        temperature = rng.choice([0.0, 0.5, 1.0, 1.3], n).astype(np.float32)
        seeds = rng.integers(0, 2**32, n)
        positions = rng.integers(0, 2**31, n)
        expected = sample_scalar(torch.tensor(params), config, torch.tensor(temperature),
                                 torch.tensor(seeds), torch.tensor(positions)).numpy()
        kind = {"mol": 1, "gaussian": 2}[config.output]
        got = np.array([sample_scalar_one(params[i], kind, config.mixtures,
                                          np.float32(config.log_scale_min), temperature[i],
                                          seeds[i], positions[i]) for i in range(n)])
        close = np.abs(got - expected) < 1e-5
        assert close.mean() > 0.998, (config.output, close.mean())  # a near-tie pick may flip
        assert np.all(close[temperature == 0])


# -- bitwise batch and chunk invariance, group and split mode -------------------------------

def _alone_then_together(config, precision, temperature):
    return alone_then_together(random_model(config, seed=3), precision, temperature,
                               _rows(config, 16, STEPS, 5))


@pytest.mark.parametrize("precision", PRECISIONS + ("bf16a", "int8a"))
@pytest.mark.parametrize("kind", list(CASES))
def test_stream_is_bitwise_identical_alone_beside_others_and_split(kind, precision):
    expected = _alone_then_together(CASES[kind], precision, temperature=0.9)
    assert len(set(expected.tolist())) > 10                   # it did sample


@pytest.mark.skipif(not SPLIT_SUPPORTED, reason="split mode needs x86-64 Linux")
@pytest.mark.parametrize("precision", PRECISIONS + ("bf16a", "int8a"))   # + dot formats
@pytest.mark.parametrize("kind", ["softmax", "mol"])
def test_a_team_that_splits_the_residual_is_bitwise_one_thread(kind, precision):
    """130 residual channels: two whole 64-wide panels, one per thread of a team of two
    (the rest, [128, 144), every thread computes); out biases and the residual scale too."""
    config = replace(CASES[kind], residual_channels=130)
    team = CpuBackend(random_model(config), threads=2, precision=precision, core_cache=0)
    assert [team._residual_panels(t, 2, 5) for t in range(2)] == [(0, 64, 128),
                                                                  (64, 128, 128)]
    expected = _alone_then_together(config, precision, temperature=0.9)
    assert len(set(expected.tolist())) > 10


# -- generation against the torch backend ----------------------------------------------------

@pytest.mark.parametrize("kind", list(CASES))
@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_generation_matches_the_torch_backend(kind, temperature):
    """Outputs differ in the last bits, so a draw on a boundary may differ: most seeded
    streams must match (16-bit codes within one, for scalar samples)."""
    config = CASES[kind]
    model = random_model(config, seed=1)
    steps = config.receptive_field + 40
    matches = []
    for seed in range(4):
        rows = _rows(config, 1, steps, seed)
        runs = []
        for backend in (TorchBackend(model), CpuBackend(model, threads=2)):
            state = backend.new_state(2)
            backend.open_slot(state, 1, seed=seed, temperature=temperature, speaker=1)
            runs.append(np.concatenate([backend.generate(
                state, [1], k, None if rows is None else rows[:, a:a + k])[0]
                for a, k in ((0, 9), (9, steps - 9))]))
        matches.append(np.abs(runs[0] - runs[1]).max() <= (1 if config.scalar_io else 0))
    assert sum(matches) >= len(matches) - 1, matches


# -- interface -----------------------------------------------------------------------------

def test_options_choose_cpu_and_a_learned_upsampler_takes_rows():
    model = random_model(MOL)
    backend = make_backend(model, "auto", "cpu")
    assert backend.name == "cpu" and not backend.accepts_mel_frames
    assert CpuBackend(random_model(SOFTMAX)).accepts_mel_frames
    state = backend.new_state(1)
    backend.open_slot(state, 0, history=[0.5, -0.25, 0.1], history_local=np.ones((2, 4)))
    frames = MelFrames.window(np.zeros((3, 4), np.float32), 4, 0, 8)
    with pytest.raises(ValueError, match="per-sample rows"):
        backend.generate(state, [0], 8, frames)
    codes = backend.generate(state, [0], 8, np.zeros((1, 8, 4), np.float32))
    assert codes.dtype == np.int64 and np.abs(codes).max() <= 32767
    assert float(state.next_value[0]) == pytest.approx(codes[0, -1] / 32767, abs=1 / 32767)
    out = backend.step_logits(state, [0], [0.3], np.zeros((1, 4), np.float32))
    assert out.shape == (1, MOL.output_channels)


def test_precision_cost_says_what_it_cannot_measure(tmp_path):
    """Scalar-output models are measured now (tests/interop/test_r9y9_precision_cost.py);
    a softmax model with a learned upsampler is not, and a folder that is no corpus is
    named as such, not a traceback."""
    import dataclasses

    from wavenet_cli.main import main
    from wavenet_core.model.checkpoint import save_checkpoint

    path = tmp_path / "upsampled.safetensors"
    save_checkpoint(path, random_model(dataclasses.replace(
        SOFTMAX, mel_channels=4, upsample_scales=(2, 2), mel=MelConfig(n_mels=4, hop_length=4))))
    with pytest.raises(SystemExit, match="learned upsampler runs fp32 under precision auto"):
        main(["precision-cost", str(path), "--corpus", str(tmp_path)])
    path = tmp_path / "gaussian.safetensors"
    save_checkpoint(path, random_model(GAUSSIAN))
    with pytest.raises(SystemExit, match="not a `wavenet corpus` folder"):
        main(["precision-cost", str(path), "--corpus", str(tmp_path)])
