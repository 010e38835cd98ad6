"""The CUDA-graph backend: its masked all-slot step on the CPU here, the real graph on a GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers.tiny_models import random_model
from wavenet_core.generation import TorchBackend
from wavenet_core.generation.torch.cuda_graph import CudaGraphBackend
from wavenet_core.model.config import MelConfig, WaveNetConfig

CONFIG = WaveNetConfig(layers_per_stack=3, stacks=2, dilation_cycle=(1, 3, 5),
                       residual_channels=7, skip_channels=9, mel_channels=4, num_speakers=3,
                       speaker_channels=5, mel=MelConfig(n_mels=4))


def _run(backend, steps=60, chunk=25):
    state = backend.new_state(6)
    local = torch.randn(2, steps, 4, generator=torch.Generator().manual_seed(1))
    backend.open_slot(state, 1, seed=4, temperature=0.8, speaker=2)
    backend.open_slot(state, 4, seed=9, temperature=0.0, speaker=0)
    backend.open_slot(state, 5, seed=1, temperature=1.0, speaker=1)   # live but not stepped
    parts = [backend.generate(state, [1, 4], min(chunk, steps - k), local[:, k:k + chunk])
             for k in range(0, steps, chunk)]
    return np.concatenate(parts, 1), state


def _check_equal_to_torch(device, use_graph):
    model = random_model(CONFIG)
    expected, ref_state = _run(TorchBackend(model, "cpu"))
    got, state = _run(CudaGraphBackend(model, device, max_chunk=16, use_graph=use_graph))
    np.testing.assert_array_equal(got, expected)
    assert state.positions.tolist() == ref_state.positions.tolist() == [0, 60, 0, 0, 60, 0]


def test_masked_all_slot_step_matches_torch_backend_on_cpu():
    _check_equal_to_torch("cpu", use_graph=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: CUDA graph not run")
def test_cuda_graph_matches_torch_backend():
    _check_equal_to_torch("cuda", use_graph=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: CUDA graph not run")
def test_cuda_graph_teacher_forced_logits_equal_full_forward():
    model = random_model(CONFIG).cuda()
    backend = CudaGraphBackend(model, "cuda")
    state = backend.new_state(2)
    backend.open_slot(state, 0, speaker=1)
    field = CONFIG.receptive_field
    codes = torch.randint(0, 256, (1, 3 * field), device="cuda")
    local = torch.randn(1, 4, 3 * field, device="cuda")
    with torch.no_grad():
        full = model(codes, local, torch.tensor([1], device="cuda"))[0].T
    steps = [backend.step_logits(state, [0], codes[:, t], local[:, :, t]) for t in range(3 * field)]
    torch.testing.assert_close(torch.cat(steps)[field - 1:], full, rtol=0, atol=1e-4)
