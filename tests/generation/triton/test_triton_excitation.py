"""The triton kernel on excitation models (docs/excitation.md): teacher-forced outputs and
the LPC history against the torch backend (fp32, and fp16 within its tolerance), sampling
as the torch backend's, a slot's samples and state bitwise the same alone or beside others.
Runs the compiled kernel on CUDA, the interpreter elsewhere (tiny configs, few samples).
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
)
from tests.helpers.tiny_models import excitation_inputs, random_model  # noqa: E402
from wavenet_core.generation import TorchBackend  # noqa: E402
from wavenet_core.generation.registry import make_backend  # noqa: E402
from wavenet_core.generation.triton.backend import TritonBackend  # noqa: E402
from wavenet_core.model.config import MelConfig, WaveNetConfig  # noqa: E402

CONFIG = WaveNetConfig(layers_per_stack=2, stacks=1, dilation_cycle=(1, 3),
                       residual_channels=5, skip_channels=9, classes=17, kernel_size=3,
                       out_bias=True, mel_channels=3, num_speakers=3, speaker_channels=2,
                       mel=MelConfig(n_mels=3, hop_length=8), mel_mean=-2.0,
                       excitation="lpc", lpc_order=5)


def _teacher(backend, slots, streams, steps):
    """Teacher-force `streams` (excitation_inputs) through `slots` -> outputs [n, K, Q]
    and the state."""
    state = backend.new_state(max(slots) + 1)
    for slot, s in zip(slots, streams):
        backend.open_slot(state, slot, speaker=int(s["speaker"]))
    x = torch.cat([s["x"] for s in streams])
    local = torch.cat([s["local"] for s in streams]).transpose(1, 2)
    lpc = torch.cat([s["lpc"] for s in streams])
    out = [torch.as_tensor(backend.step_logits(state, slots, x[:, t], local[:, t],
                                               lpc=lpc[:, t])).cpu()
           for t in range(steps)]
    return torch.stack(out, 1).numpy(), state


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_teacher_forced_outputs_and_history_equal_the_torch_backend(precision):
    model = random_model(CONFIG, seed=1)
    slots, steps = [17, 2, 9], 14                    # slot 17: a second program
    streams = [excitation_inputs(CONFIG, steps, seed=i) for i in range(3)]
    expected, tstate = _teacher(TorchBackend(model, "cpu"), slots, streams, steps)
    got, state = _teacher(TritonBackend(model, DEVICE, precision=precision), slots, streams,
                          steps)
    atol = 1e-4 if precision == "fp32" else FP16_LOGIT_TOLERANCE
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
    np.testing.assert_array_equal(state.lpc_history[slots].cpu().numpy(),
                                  tstate.lpc_history[slots].numpy())


def _rows(n, steps, seed):
    rng = np.random.default_rng(seed)
    return (rng.normal(-3, 1, (n, steps, 3)).astype(np.float32),
            rng.normal(0, 0.3, (n, steps, CONFIG.lpc_order)).astype(np.float32))


def test_sampling_matches_the_torch_backend():
    model = random_model(CONFIG, seed=2)
    steps = 24
    matches = []
    for seed in range(3):
        local, lpc = _rows(1, steps, seed)
        runs = []
        for backend in (TorchBackend(model, "cpu"),
                        TritonBackend(model, DEVICE, precision="fp32")):
            state = backend.new_state(2)
            backend.open_slot(state, 1, seed=seed, temperature=0.9, speaker=1)
            runs.append(np.concatenate([backend.generate(state, [1], k, local[:, a:a + k],
                                                         lpc[:, a:a + k])[0]
                                        for a, k in ((0, 5), (5, steps - 5))]))
        matches.append(np.array_equal(runs[0], runs[1]))
    assert sum(matches) >= len(matches) - 1, matches


def test_a_slot_is_bitwise_the_same_alone_or_beside_others():
    backend = TritonBackend(random_model(CONFIG, seed=3), DEVICE, precision="fp32")
    steps = 20
    local, lpc = _rows(20, steps, 7)
    state = backend.new_state(1)
    backend.open_slot(state, 0, seed=5, temperature=1.0, speaker=2)
    alone = backend.generate(state, [0], steps, local[:1], lpc[:1])[0]
    keep = (state.ring[0].clone(), state.lpc_history[0].clone(), state.next_value[0].clone())
    for slot, chunks in ((3, (20,)), (18, (7, 13))):
        state = backend.new_state(20)
        for other in range(20):
            backend.open_slot(state, other, seed=5 if other == slot else other,
                              speaker=2 if other == slot else other % 3,
                              temperature=1.0 if other == slot else [0.0, 0.5, 1.3][other % 3])
        order = [slot] + [s for s in np.random.default_rng(slot).permutation(20) if s != slot]
        parts, done = [], 0
        for k in chunks:
            parts.append(backend.generate(state, order, k, local[:, done:done + k],
                                          lpc[:, done:done + k]))
            done += k
        np.testing.assert_array_equal(np.concatenate(parts, 1)[0], alone)
        assert torch.equal(state.ring[slot], keep[0])
        assert torch.equal(state.lpc_history[slot], keep[1])
        assert torch.equal(state.next_value[slot], keep[2])
    assert len(set(alone.tolist())) > 5


def test_auto_runs_it_and_the_rows_are_checked():
    model = random_model(CONFIG)
    backend = TritonBackend(model, DEVICE, precision="fp32")
    state = backend.new_state(1)
    backend.open_slot(state, 0)
    with pytest.raises(ValueError, match="needs `lpc` rows"):
        backend.generate(state, [0], 2, np.zeros((1, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"lpc must be \[1, 2, 5\]"):
        backend.generate(state, [0], 2, np.zeros((1, 2, 3), np.float32),
                         np.zeros((1, 2, 4), np.float32))
    if DEVICE == "cuda":
        assert make_backend(model, "auto", "cuda").name == "triton"
