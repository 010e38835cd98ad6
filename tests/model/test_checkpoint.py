"""Checkpoints round-trip bit-exactly, never unpickle, and name the file and tensor on errors."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from safetensors.torch import load_file, save_file

from tests.helpers.models import configs, random_inputs, random_model
from wavenet_core import (
    CheckpointError,
    WaveNet,
    WaveNetConfig,
    load_checkpoint,
    save_checkpoint,
)
from wavenet_core.model.checkpoint import read_metadata

SMALL = WaveNetConfig(layers_per_stack=3, stacks=2, residual_channels=5, skip_channels=7,
                      mel_channels=3, num_speakers=2, speaker_channels=3)


@settings(max_examples=10, deadline=None)
@given(config=configs(options=True))
def test_round_trip_gives_bit_identical_logits(config, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "m.safetensors"
    model = random_model(config)
    save_checkpoint(path, model)
    loaded = load_checkpoint(path)
    assert loaded.config == config
    codes, local, speaker = random_inputs(config, config.receptive_field + 9)
    with torch.no_grad():
        assert torch.equal(model(codes, local, speaker), loaded(codes, local, speaker))


def test_metadata_holds_config_version_and_extras(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, random_model(SMALL), {"speakers": json.dumps(["a", "b"])})
    meta = read_metadata(path)
    assert meta["format"] == "wavenet-core" and meta["format_version"] == "2"
    assert WaveNetConfig.from_json(meta["config"]) == SMALL
    assert json.loads(meta["speakers"]) == ["a", "b"]


def _rewrite(path, change):
    tensors = load_file(str(path))
    meta = read_metadata(path)
    change(tensors, meta)
    save_file(tensors, str(path), metadata=meta)


@pytest.mark.parametrize("change, tensor, message", [
    (lambda t, m: t.pop("layers.2.gate_conv.weight"), "layers.2.gate_conv.weight", "missing"),
    (lambda t, m: t.__setitem__("extra.weight", torch.zeros(2)), "extra.weight", "unexpected"),
    (lambda t, m: t.__setitem__("head_1x1.bias", torch.zeros(3)), "head_1x1.bias", "shape"),
    (lambda t, m: t["embedding.weight"].__setitem__((0, 0), float("nan")), "embedding.weight",
     "NaN"),
    (lambda t, m: t.__setitem__("logits_1x1.bias", t["logits_1x1.bias"].double()),
     "logits_1x1.bias", "dtype"),
])
def test_wrong_tensors_are_named(tmp_path, change, tensor, message):
    path = tmp_path / "bad.safetensors"
    save_checkpoint(path, random_model(SMALL))
    _rewrite(path, change)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert info.value.tensor == tensor
    assert str(path) in str(info.value) and tensor in str(info.value)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "pickle"])
def test_damaged_files_are_named(tmp_path, damage):
    import pickle

    path = tmp_path / "damaged.safetensors"
    save_checkpoint(path, random_model(SMALL))
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00garbage" * 40,
                      "empty": b"", "pickle": pickle.dumps({"x": 1})}[damage])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_bad_metadata_is_named(tmp_path):
    path = tmp_path / "meta.safetensors"
    save_checkpoint(path, random_model(SMALL))
    _rewrite(path, lambda t, m: m.__setitem__("format_version", "99"))
    with pytest.raises(CheckpointError, match="format_version"):
        load_checkpoint(path)
    _rewrite(path, lambda t, m: (m.__setitem__("format_version", "1"),
                                 m.__setitem__("config", "{not json")))
    with pytest.raises(CheckpointError, match="config"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_config_json_round_trip_and_receptive_field():
    config = WaveNetConfig(layers_per_stack=3, stacks=2, dilation_cycle=(1, 3, 6))
    assert WaveNetConfig.from_json(config.to_json()) == config
    assert config.dilations == (1, 3, 6, 1, 3, 6)
    assert config.receptive_field == 21
    assert WaveNetConfig().receptive_field == 2 * 1023 + 1
    with pytest.raises(ValueError, match="dilation_cycle"):
        WaveNetConfig(layers_per_stack=2, dilation_cycle=(1, 2, 3))
    with pytest.raises(ValueError, match="unknown"):
        WaveNetConfig.from_dict({"bogus": 1})


def test_bundled_version_1_checkpoints_still_load():
    """models/ holds version-1 files (written before the r9y9 options) beside version-2 ones
    (the vocoder): every one loads with the seed's defaults (the vocoder is an excitation
    model) and gives the same logits as the model rebuilt from its tensors."""
    from pathlib import Path

    bundled = sorted((Path(__file__).resolve().parents[2] / "models").glob("*.safetensors"))
    versions = [read_metadata(path)["format_version"] for path in bundled]
    assert "1" in versions and set(versions) <= {"1", "2"}
    for path in bundled:
        model = load_checkpoint(path)
        assert model.config.kernel_size == 2 and model.config.output == "softmax"
        # the seed's design, but for the vocoder's excitation output (issue 26)
        assert model.config.unsupported_options() == (
            ["excitation='lpc'"] if path.name == "vocoder.safetensors" else [])
        plain = WaveNet(model.config)
        plain.load_state_dict(load_file(str(path)))
        codes, local, speaker = random_inputs(model.config, model.receptive_field + 3)
        extra = ({"prediction": torch.rand(codes.shape) - 0.5}
                 if model.config.lpc_excitation else {})
        with torch.no_grad():
            assert torch.equal(model(codes, local, speaker, **extra),
                               plain(codes, local, speaker, **extra))
