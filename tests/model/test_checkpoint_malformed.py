"""Hand-crafted malformed checkpoints (issue 27): overlapping tensors, holes, data shorter
than the header, a config beyond sane sizes, a tiny file whose config asks for a huge model.
Each is a `CheckpointError` naming the file, before any large allocation."""

from __future__ import annotations

import json
import struct

import pytest
import torch

from wavenet_core import WaveNet, WaveNetConfig, save_checkpoint
from wavenet_core.model.checkpoint import CheckpointError, load_checkpoint, load_config

TINY = dict(layers_per_stack=2, stacks=1, residual_channels=4, skip_channels=4, classes=8)


def raw_file(path, tensors: dict, body: bytes, config: dict | None = None) -> None:
    """A safetensors file written byte by byte: `tensors` is name -> (shape, offsets)."""
    header = {"__metadata__": {"format": "wavenet-core", "format_version": "2",
                               "config": json.dumps(config or TINY)}}
    for name, (shape, offsets) in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": list(offsets)}
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + body)


def model_layout() -> tuple[dict, int]:
    """The tiny model's tensors laid out back to back -> (name -> (shape, offsets), bytes)."""
    out, offset = {}, 0
    for name, value in sorted(WaveNet(WaveNetConfig(**TINY)).state_dict().items()):
        size = 4 * value.numel()
        out[name] = (tuple(value.shape), (offset, offset + size))
        offset += size
    return out, offset


def test_a_well_formed_hand_made_file_loads(tmp_path):
    layout, size = model_layout()
    raw_file(tmp_path / "ok.safetensors", layout, bytes(size))
    assert isinstance(load_checkpoint(tmp_path / "ok.safetensors"), WaveNet)


def test_overlapping_tensors_are_refused(tmp_path):
    layout, size = model_layout()
    first, second = sorted(layout)[:2]
    shape, (start, stop) = layout[second]
    layout[second] = (shape, (start - 4, stop - 4))      # shares 4 bytes with `first`
    raw_file(tmp_path / "overlap.safetensors", layout, bytes(size))
    with pytest.raises(CheckpointError, match="overlap.safetensors.*invalid offset"):
        load_checkpoint(tmp_path / "overlap.safetensors")


def test_data_shorter_than_the_header_is_refused(tmp_path):
    layout, size = model_layout()
    raw_file(tmp_path / "short.safetensors", layout, bytes(size - 8))
    with pytest.raises(CheckpointError, match="short.safetensors"):
        load_checkpoint(tmp_path / "short.safetensors")


def test_a_shape_that_does_not_match_its_bytes_is_refused(tmp_path):
    layout, size = model_layout()
    name = sorted(layout)[0]
    shape, offsets = layout[name]
    layout[name] = ((shape[0] + 1, *shape[1:]), offsets)
    raw_file(tmp_path / "shape.safetensors", layout, bytes(size))
    with pytest.raises(CheckpointError, match="shape.safetensors"):
        load_checkpoint(tmp_path / "shape.safetensors")


@pytest.mark.parametrize("field,value", [("residual_channels", 1 << 20), ("classes", 1 << 24),
                                         ("num_layers", 20_000), ("num_speakers", 1 << 30)])
def test_a_config_beyond_sane_sizes_is_refused(tmp_path, field, value):
    config = {**TINY, field: value} if field != "num_layers" else {**TINY, "stacks": 10_000}
    raw_file(tmp_path / "big.safetensors", {}, b"", config=config)
    with pytest.raises(CheckpointError, match=f"beyond sane sizes: {field} {value} exceeds"):
        load_config(tmp_path / "big.safetensors")


def test_a_tiny_file_asking_for_a_large_model_allocates_nothing(tmp_path):
    """Within the limits but 1 GB of weights, against a file of a few kB: refused on the
    header's shapes, before the model is built."""
    big = {**TINY, "residual_channels": 4096, "skip_channels": 4096, "layers_per_stack": 4}
    layout, size = model_layout()
    raw_file(tmp_path / "liar.safetensors", layout, bytes(size), config=big)
    with pytest.raises(CheckpointError, match="liar.safetensors"):
        load_checkpoint(tmp_path / "liar.safetensors")


def test_saved_checkpoints_still_round_trip(tmp_path):
    model = WaveNet(WaveNetConfig(**TINY))
    save_checkpoint(tmp_path / "m.safetensors", model)
    back = load_checkpoint(tmp_path / "m.safetensors")
    for name, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[name], value)
