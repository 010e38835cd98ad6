"""A random r9y9 model through the real files: the interop tests' one way to convert."""

from __future__ import annotations

import json

import torch

from wavenet_cli.main import main
from wavenet_core import load_checkpoint
from wavenet_core.bench.r9y9_models import r9y9_hparams


def convert(theirs, kind, tmp_path):
    """torch.save .pth -> `wavenet convert` -> load_checkpoint."""
    pth, out, hp = tmp_path / "r9y9.pth", tmp_path / "ours.safetensors", tmp_path / "hp.json"
    torch.save({"state_dict": theirs.state_dict(), "global_step": 3}, pth)
    hp.write_text(json.dumps(r9y9_hparams(theirs, "Normal" if kind == "gaussian" else None)))
    assert main(["convert", "--from", "r9y9", str(pth), str(out), "--hparams", str(hp)]) == 0
    return load_checkpoint(out)
