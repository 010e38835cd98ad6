"""Converted r9y9 wavenet_vocoder models against their own code (the `wavenet-vocoder` 0.1.1
package): teacher-forced outputs equal their `forward`, queue generation equals their
`incremental_forward` fed the same uniform draws. 0.1.1 has no Gaussian output: that one
is checked against an independent float64 reference (their forward in float64, stepped
sample by sample, and a float64 Box-Muller)."""

from __future__ import annotations

import copy
import importlib.util
import itertools

import numpy as np
import pytest
import torch

from tests.helpers.r9y9_convert import convert
from wavenet_core.bench.r9y9_models import random_r9y9
from wavenet_core.generation.registry import make_backend
from wavenet_core.generation.sampling import PCM_SCALE, counter_uniform, draws_per_sample

wavenet_vocoder = pytest.importorskip("wavenet_vocoder")

SCALES, FRAMES, SEED = [2, 3], 5, 7
STEPS = FRAMES * 6
OUTPUTS = {"softmax": 256, "mol": 9, "gaussian": 2}
CASES = [(kind, k, local, spk) for kind, k, (local, spk) in itertools.product(
    OUTPUTS, (2, 3), [(False, False), (True, False), (False, True), (True, True)])]


def build(kind: str, kernel: int, local: bool, speakers: bool, legacy: bool = True):
    return random_r9y9(
        seed=kernel * 10 + 2 * local + speakers, out_channels=OUTPUTS[kind], layers=4,
        stacks=2, residual_channels=6, gate_channels=8, skip_out_channels=5,
        kernel_size=kernel, cin_channels=3 if local else -1,
        gin_channels=4 if speakers else -1, n_speakers=3 if speakers else None,
        upsample_conditional_features=local, upsample_scales=SCALES,
        freq_axis_kernel_size=3, scalar_input=kind != "softmax", legacy=legacy)


def inputs(kind, local, speakers):
    g = torch.Generator().manual_seed(1)
    frames = torch.rand(1, 3, FRAMES, generator=g) if local else None
    speaker = torch.tensor([2]) if speakers else None
    if kind == "softmax":
        codes = torch.randint(0, 256, (1, STEPS), generator=g)
        return codes, torch.nn.functional.one_hot(codes, 256).float().transpose(1, 2), \
            frames, speaker
    values = torch.rand(1, STEPS, generator=g) * 2 - 1
    return values, values.unsqueeze(1), frames, speaker


@pytest.mark.parametrize("kind, kernel, local, speakers", CASES)
def test_teacher_forced_outputs_equal_their_forward(kind, kernel, local, speakers, tmp_path):
    theirs = build(kind, kernel, local, speakers)
    ours = convert(theirs, kind, tmp_path)
    codes, their_x, frames, speaker = inputs(kind, local, speakers)
    with torch.no_grad():
        expected = theirs(their_x, frames, None if speaker is None else speaker.view(1, 1))
        rows = None if frames is None else ours.upsampler(frames)
        got = ours(codes, rows, speaker, pad=True)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
        # and the queue backend, one step at a time
        backend = make_backend(ours, "torch", "cpu")
        state = backend.new_state(2)
        backend.open_slot(state, 1, speaker=0 if speaker is None else int(speaker))
        steps = torch.stack([backend.step_logits(state, [1], codes[:, t],
                                                 None if rows is None else rows[:, :, t])[0]
                             for t in range(STEPS)], 1)
        torch.testing.assert_close(steps, expected[0], rtol=0, atol=1e-4)
    if importlib.util.find_spec("numba"):      # and the compiled cpu kernel, in one call
        cpu = make_backend(ours, "cpu", "cpu", "fp32")
        state = cpu.new_state(1)
        cpu.open_slot(state, 0, speaker=0 if speaker is None else int(speaker))
        forced = cpu.teacher_force(state, [0], codes.numpy(),
                                   None if rows is None else rows.transpose(1, 2).numpy())
        np.testing.assert_allclose(forced[0].T, expected[0].numpy(), rtol=0, atol=1e-4)


def test_legacy_false_keeps_the_plain_skip_sum(tmp_path):
    theirs = build("mol", 3, True, False, legacy=False)
    ours = convert(theirs, "mol", tmp_path)
    codes, their_x, frames, _ = inputs("mol", True, False)
    with torch.no_grad():
        torch.testing.assert_close(ours(codes, ours.upsampler(frames), pad=True),
                                   theirs(their_x, frames), rtol=0, atol=1e-4)


def our_draws(config, steps):
    """Our uniforms in draw order: sample n takes counters n*D .. n*D + D-1."""
    d = draws_per_sample(config)
    counters = torch.arange(steps * d)
    return counter_uniform(torch.full_like(counters, SEED), counters).tolist()


def ours_generate(model, frames, speaker, history=None, backend="torch"):
    """Our codes from `backend` ("torch", or the compiled "cpu" one when numba is here)."""
    if backend == "cpu":
        pytest.importorskip("numba")
    backend = make_backend(model, backend, "cpu", "fp32")
    state = backend.new_state(3)
    backend.open_slot(state, 2, seed=SEED, history=history,
                      speaker=0 if speaker is None else int(speaker))
    rows = None if frames is None else model.upsampler(frames).transpose(1, 2)
    with torch.no_grad():
        first = backend.generate(state, [2], 11, None if rows is None else rows[:, :11])
        rest = backend.generate(state, [2], STEPS - 11, None if rows is None else rows[:, 11:])
    return np.concatenate([first[0], rest[0]])


class FedRandomState(np.random.RandomState):
    """numpy's own `choice` (cdf, searchsorted), its uniform replaced by our draws."""

    def __init__(self, draws):
        super().__init__(0)
        self.draws = iter(draws)

    def random_sample(self, size=None):
        return np.float64(next(self.draws))


@pytest.mark.parametrize("backend", ["torch", "cpu"])
@pytest.mark.parametrize("kind, kernel, local, speakers",
                         [c for c in CASES if c[0] != "gaussian"])
def test_generation_equals_their_incremental_forward(kind, kernel, local, speakers, backend,
                                                     tmp_path, monkeypatch):
    theirs = build(kind, kernel, local, speakers)
    ours = convert(theirs, kind, tmp_path)
    _, _, frames, speaker = inputs(kind, local, speakers)
    draws = our_draws(ours.config, STEPS)
    theirs.make_generation_fast_()      # as their synthesis does: weight norm removed once
    if kind == "softmax":
        monkeypatch.setattr(np.random, "choice", FedRandomState(draws).choice)
    else:
        feed = iter(draws)

        def uniform_(self, low=0.0, high=1.0):
            u = torch.tensor([next(feed) for _ in range(self.numel())]).view_as(self)
            return self.copy_(low + (high - low) * u)

        monkeypatch.setattr(torch.Tensor, "uniform_", uniform_)
    with torch.no_grad():
        out = theirs.incremental_forward(
            c=frames, g=None if speaker is None else speaker.view(1, 1), T=STEPS,
            log_scale_min=ours.config.log_scale_min)
    monkeypatch.undo()
    if kind == "softmax":   # their stream starts from code 127
        got = ours_generate(ours, frames, speaker, history=[127], backend=backend)
        np.testing.assert_array_equal(got, out[0].argmax(0).numpy())
    else:
        got = ours_generate(ours, frames, speaker, backend=backend)
        expected = np.round(out[0, 0].numpy().astype(np.float64) * PCM_SCALE)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1)
    assert len(set(got.tolist())) > 3          # it did sample


def gaussian_reference(theirs, config, frames, speaker):
    """Float64: their forward over the samples so far, then mean + std * Box-Muller."""
    model = copy.deepcopy(theirs).double()
    model.make_generation_fast_()
    u = np.asarray(our_draws(config, STEPS), np.float64).reshape(STEPS, 2)
    x = torch.zeros(1, 1, STEPS, dtype=torch.float64)    # x[t] is the input at step t
    out = np.empty(STEPS)
    with torch.no_grad():
        for t in range(STEPS):
            params = model(x, None if frames is None else frames.double(),
                           None if speaker is None else speaker.view(1, 1))[0, :, t].numpy()
            std = np.exp(max(params[1], config.log_scale_min))
            normal = np.sqrt(-2 * np.log(1 - u[t, 0])) * np.cos(2 * np.pi * u[t, 1])
            out[t] = np.clip(params[0] + std * normal, -1, 1)
            if t + 1 < STEPS:
                x[0, 0, t + 1] = float(np.float32(out[t]))
    return out


@pytest.mark.parametrize("backend", ["torch", "cpu"])
@pytest.mark.parametrize("kernel, local, speakers",
                         [c[1:] for c in CASES if c[0] == "gaussian"])
def test_gaussian_generation_equals_a_float64_reference(kernel, local, speakers, backend,
                                                        tmp_path):
    theirs = build("gaussian", kernel, local, speakers)
    ours = convert(theirs, "gaussian", tmp_path)
    _, _, frames, speaker = inputs("gaussian", local, speakers)
    expected = np.round(gaussian_reference(theirs, ours.config, frames, speaker) * PCM_SCALE)
    got = ours_generate(ours, frames, speaker, backend=backend)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1)
    assert len(set(got.tolist())) > 3
