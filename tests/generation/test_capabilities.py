"""The capability table decides: a backend refuses, by name, a model using an option it
lacks, and "auto" picks one that runs the model."""

from __future__ import annotations

import pytest

from tests.helpers.tiny_models import random_model
from wavenet_core.generation import TorchBackend, capabilities
from wavenet_core.generation.registry import make_backend
from wavenet_core.model.config import WaveNetConfig

MOL = WaveNetConfig(layers_per_stack=2, stacks=1, residual_channels=4, skip_channels=6,
                    kernel_size=3, input_kind="scalar", output="mol", mixtures=2)


def test_a_backend_refuses_the_options_it_lacks_by_name():
    with pytest.raises(ValueError, match=r"'cuda-graph' backend does not support .*"
                                         r"kernel_size=3.*output='mol'"):
        make_backend(random_model(MOL), "cuda-graph", "cpu")


def test_the_table_decides_for_the_cpu_backend_and_auto(monkeypatch):
    pytest.importorskip("numba")
    model = random_model(MOL)
    assert make_backend(model, "auto", "cpu").name == "cpu"        # it runs every option
    lacking = tuple(o for o in capabilities.BACKEND_OPTIONS["cpu"] if o != "output")
    monkeypatch.setitem(capabilities.BACKEND_OPTIONS, "cpu", lacking)
    with pytest.raises(ValueError, match=r"'cpu' backend does not support output='mol'"):
        make_backend(model, "cpu", "cpu")
    assert isinstance(make_backend(model, "auto", "cpu"), TorchBackend)
    assert make_backend(random_model(WaveNetConfig(layers_per_stack=2, stacks=1,
                                                   residual_channels=4, skip_channels=6)),
                        "auto", "cpu").name == "cpu"   # the seed's design still runs there
