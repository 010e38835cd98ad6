"""A converted r9y9 model on the cpu backend's dot formats (bf16a, int8a; docs/cpu-kernel.md
"Dot formats"), as `wavenet bench --r9y9` runs their LJSpeech preset: mixture of logistics,
kernel 3, a z width of its own, out biases and residual scale, learned-upsampler rows, and
a residual of whole 64-wide panels that a team splits. Tiny here (4 layers); the bench
runs the 512-channel preset. A stream is bitwise the same alone, beside others and split
across threads, as tests/generation/cpu/ proves for our own models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers.cpu_reference import STEPS, alone_then_together
from wavenet_core.bench.r9y9 import converted_r9y9
from wavenet_core.generation.cpu.backend import CpuBackend
from wavenet_core.generation.cpu.sync import SPLIT_SUPPORTED

pytest.importorskip("wavenet_vocoder")

# r9y9's arguments: 130 residual channels (two whole panels and a tail), z 18 wide
PRESET = dict(out_channels=30, layers=4, stacks=2, residual_channels=130, gate_channels=36,
              skip_out_channels=24, kernel_size=3, cin_channels=5,
              upsample_conditional_features=True, upsample_scales=[2, 2],
              freq_axis_kernel_size=3, scalar_input=True)


@pytest.fixture(scope="module")
def converted():
    """(model, mel rows [16, STEPS, 5] from its own learned upsampler)."""
    _, model = converted_r9y9(PRESET)
    frames = torch.rand(16, 5, STEPS // 4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        rows = model.upsampler(frames).transpose(1, 2).numpy()
    return model, np.ascontiguousarray(rows, np.float32)


@pytest.mark.parametrize("precision", ["bf16a", "int8a"])
def test_dot_formats_are_batch_and_split_invariant_on_a_converted_model(converted, precision):
    model, rows = converted
    config = model.config
    assert (config.output, config.kernel_size, config.residual_channels) == ("mol", 3, 130)
    team = CpuBackend(model, threads=2, precision=precision, core_cache=0)
    assert [team._residual_panels(t, 2, 16) for t in range(2)] == [(0, 64, 128),
                                                                   (64, 128, 128)]
    expected = alone_then_together(model, precision, 0.9, rows)
    assert len(set(expected.tolist())) > 10                    # it did sample


@pytest.mark.skipif(not SPLIT_SUPPORTED, reason="split mode needs x86-64 Linux")
@pytest.mark.parametrize("precision", ["bf16a", "int8a"])
def test_dot_formats_teacher_forced_split_equals_one_thread(converted, precision):
    """The mixture parameters themselves, not only the samples drawn from them."""
    model, rows = converted
    values = np.random.default_rng(1).uniform(-1, 1, (3, 40)).astype(np.float32)
    outputs = []
    for threads, split in ((1, "never"), (2, "always")):
        backend = CpuBackend(model, threads=threads, precision=precision, split=split,
                             core_cache=0)
        state = backend.new_state(3)
        for slot in range(3):
            backend.open_slot(state, slot, seed=slot)
        outputs.append(backend.teacher_force(state, [0, 1, 2], values, rows[:3, :40]))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert outputs[0].shape == (3, 40, 30) and np.abs(outputs[0]).max() > 0
