"""The triton kernel with voicing-shaped sampling (docs/voicing.md): the torch backend's
samples from the same uniforms (tiny hypothesis configs, plain and excitation models), a
shaped slot bitwise the same alone or beside others, plain rows = no rows. The compiled
kernel on CUDA, the interpreter elsewhere."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("triton") is None:      # see test_triton_backend.py
    pytest.skip("triton is not installed", allow_module_level=True)

from hypothesis import given, settings  # noqa: E402

from tests.generation.cpu.test_cpu_shaping import _generate, _inputs  # noqa: E402
from tests.generation.test_shaping import SHAPED, random_rows  # noqa: E402
from tests.generation.triton.test_triton_backend import DEVICE  # noqa: E402
from tests.helpers.models import random_model, shaping_configs  # noqa: E402
from wavenet_core.generation import TorchBackend  # noqa: E402
from wavenet_core.generation.shaping import plain_rows  # noqa: E402
from wavenet_core.generation.triton.backend import TritonBackend  # noqa: E402
from wavenet_core.generation.triton.shape import require_fit  # noqa: E402


@settings(max_examples=3, deadline=None)
@given(config=shaping_configs(max_layers=2))
def test_the_samples_are_the_torch_backends_for_the_same_uniforms(config):
    """Outputs differ in the last bits, so a draw on a boundary may differ and the streams
    part: most seeded streams must match (an excitation model's prediction is summed in
    lpc.tree_sum's order, as torch sums it)."""
    require_fit(config, "fp32")
    model = random_model(config, seed=1)
    steps = min(config.receptive_field + 10, 40)
    local, lpc = _inputs(config, 3, steps)
    rows = random_rows(3, steps, 2)
    matches = []
    for i in range(3):
        runs = [_generate(backend, 2, [1], [i], [1.0], local[i:i + 1],
                          None if lpc is None else lpc[i:i + 1], rows[i:i + 1],
                          [7, steps - 7])[0][0]
                for backend in (TorchBackend(model, "cpu"),
                                TritonBackend(model, DEVICE, precision="fp32"))]
        matches.append(np.array_equal(*runs))
    assert sum(matches) >= len(matches) - 1, matches


def test_a_shaped_slot_is_bitwise_the_same_alone_beside_others_and_plain_rows_are_none():
    backend = TritonBackend(random_model(SHAPED, seed=3), DEVICE, precision="fp32")
    steps = 24
    local, _ = _inputs(SHAPED, 18, steps)
    rows = random_rows(18, steps, 5)
    alone, _ = _generate(backend, 1, [0], [5], [1.0], local[:1], None, rows[:1], [steps])
    order = [0] + list(range(17, 0, -1))
    slots = [16 - i if i < 17 else 17 for i in range(18)]      # stream 0 in slot 16
    got, _ = _generate(backend, 18, slots, [5] + order[1:], [1.0] * 18, local[order], None,
                       rows[order], [9, steps - 9])
    np.testing.assert_array_equal(got[0], alone[0])
    plain = np.stack([plain_rows(t, steps) for t in (0.0, 0.7)])
    state_runs = []
    for shaping in (None, plain):
        state = backend.new_state(2)
        backend.open_slot(state, 0, seed=1, temperature=0.0)
        backend.open_slot(state, 1, seed=1, temperature=0.7)
        state_runs.append(backend.generate(state, [0, 1], steps, local[:2], shaping=shaping))
    np.testing.assert_array_equal(state_runs[0], state_runs[1])
