"""The excitation option in the config, the model and the checkpoint (docs/excitation.md):
a round trip, old files unchanged, and the backends that do not run it refuse it by name."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from hypothesis import given, settings

from tests.helpers.models import excitation_configs, random_model
from tests.helpers.tiny_models import excitation_inputs
from wavenet_core import load_checkpoint, save_checkpoint
from wavenet_core.generation.capabilities import unsupported
from wavenet_core.model.checkpoint import read_metadata
from wavenet_core.model.config import MelConfig, WaveNetConfig

SMALL = WaveNetConfig(layers_per_stack=2, stacks=1, residual_channels=5, skip_channels=7,
                      mel_channels=4, mel=MelConfig(n_mels=4), excitation="lpc", lpc_order=8)


def test_config_round_trips_and_stays_out_of_plain_configs():
    assert WaveNetConfig.from_json(SMALL.to_json()) == SMALL
    assert json.loads(SMALL.to_json())["excitation"] == "lpc"
    plain = dataclasses.replace(SMALL, excitation="none")
    assert "excitation" not in plain.to_dict() and "lpc_order" not in plain.to_dict()
    assert WaveNetConfig.from_json(plain.to_json()) == dataclasses.replace(plain, lpc_order=16)
    assert SMALL.pcm_output and not plain.pcm_output
    assert "lpc_expansion" not in SMALL.to_dict()          # 1.0: the file stays as it was
    expanded = dataclasses.replace(SMALL, lpc_expansion=0.99)
    assert WaveNetConfig.from_json(expanded.to_json()) == expanded


@pytest.mark.parametrize("change, message", [
    (dict(excitation="lpcnet"), "excitation must be"),
    (dict(lpc_order=0), "lpc_order"),
    (dict(lpc_expansion=0.0), "lpc_expansion"),
    (dict(lpc_expansion=1.01), "lpc_expansion"),
    (dict(mel_channels=0), "mel-conditioned"),
    (dict(mel_channels=3), "mel.n_mels"),
    (dict(input_kind="scalar", output="gaussian"), "embedding"),
    (dict(preemphasis=0.85), "preemphasis"),
])
def test_config_refuses_what_the_option_cannot_do(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SMALL, **change)


@settings(max_examples=8, deadline=None)
@given(config=excitation_configs())
def test_checkpoint_round_trip_gives_bit_identical_logits(config, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "m.safetensors"
    model = random_model(config)
    save_checkpoint(path, model)
    loaded = load_checkpoint(path)
    assert loaded.config == config
    assert loaded.prediction_input.shape == (config.residual_channels,)
    inp = excitation_inputs(config, config.receptive_field + 9)
    args = (inp["codes"], inp["local"], inp["speaker"])
    with torch.no_grad():
        out = model(*args, prediction=inp["prediction"])
        assert torch.equal(out, loaded(*args, prediction=inp["prediction"]))


def test_the_forward_needs_the_prediction_exactly_for_excitation_models():
    model = random_model(SMALL)
    inp = excitation_inputs(SMALL, 10)
    with torch.no_grad():
        assert not torch.equal(model(inp["codes"], inp["local"], prediction=inp["prediction"]),
                               model(inp["codes"], inp["local"],
                                     prediction=inp["prediction"] + 0.1))
    with pytest.raises(ValueError, match="needs `prediction`"):
        model(inp["codes"], inp["local"])
    plain = random_model(dataclasses.replace(SMALL, excitation="none"))
    with pytest.raises(ValueError, match="other models take none"):
        plain(inp["codes"], inp["local"], prediction=inp["prediction"])
    assert plain.prediction_input is None and "prediction_input" not in plain.state_dict()


def test_bundled_checkpoints_load_as_plain_or_excitation_models():
    """Files written before the option load as plain models; the bundled vocoder (issue 26)
    is an excitation model run with bandwidth expansion 0.99."""
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parents[2] / "models").glob("*.safetensors")):
        model = load_checkpoint(path)
        if path.name == "vocoder.safetensors":
            assert model.config.excitation == "lpc" and model.prediction_input is not None
            assert model.config.lpc_expansion == 0.99
            continue
        assert model.config.excitation == "none" and model.prediction_input is None
        assert "excitation" not in json.loads(read_metadata(path)["config"])
        assert "excitation" not in model.config.to_dict()


def test_every_backend_but_cuda_graph_runs_it_and_that_one_refuses_it_by_name():
    from wavenet_core.generation.torch.cuda_graph import CudaGraphBackend

    model = random_model(SMALL)
    assert all(unsupported(SMALL, name) == [] for name in ("torch", "cpu", "triton"))
    assert unsupported(SMALL, "cuda-graph") == ["excitation='lpc'"]
    with pytest.raises(ValueError, match=r"'cuda-graph' backend does not support "
                                         r"excitation='lpc'"):
        CudaGraphBackend(model, "cpu", use_graph=False)


def test_precision_cost_records_an_excitation_models_costs_from_a_pack(tiny_corpus, tmp_path):
    """Its costs are differences of the excitation's NLL, which equal the differences on
    the sample's grid (the prediction is the same float32 sum in every precision)."""
    from wavenet_cli.main import main
    from wavenet_core.training.pack import write_pack

    config = dataclasses.replace(SMALL, mel_channels=20, mel=MelConfig(n_mels=20,
                                                                        hop_length=256))
    pack = tmp_path / "pack.npz"
    write_pack(tiny_corpus, pack, minutes=0.01, valid_minutes=0.01,
               pad=config.receptive_field, mel=config.mel)
    path = tmp_path / "excitation.safetensors"
    save_checkpoint(path, random_model(config))
    assert main(["precision-cost", str(path), "--corpus", str(pack), "--window", "300",
                 "--write"]) == 0
    costs = json.loads(read_metadata(path)["precision_nll_cost"])
    assert {"bf16", "int8"} <= set(costs) and all(abs(v) < 0.5 for v in costs.values())
