"""scripts/gpu-train on the CPU (--smoke: two tiny steps) where only torch and numpy exist.

The GPU machine has torch, numpy and this tree, nothing else, so the script runs here in a
subprocess whose `sitecustomize` hides every other third-party package it could use
(tests/helpers/packaging.py): safetensors and tqdm then come from the wheels the script
carries. It trains from the committed pack and the bundled vocoder, writes the checkpoint
and metrics, and a second run resumes the first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.packaging import NOT_ON_THE_GPU_MACHINE, ROOT, hide_installed, script_module
from wavenet_core.model.checkpoint import load_checkpoint, read_metadata


def _run(outdir: Path, blocker: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(blocker), "PYTHON": sys.executable}
    done = subprocess.run([str(ROOT / "scripts" / "gpu-train"), str(outdir), "--smoke"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_gpu_train_smoke_with_only_torch_and_numpy(tmp_path):
    blocker = hide_installed(tmp_path / "site", NOT_ON_THE_GPU_MACHINE)
    out = tmp_path / "run"
    first = _run(out, blocker)
    bundled = int(read_metadata(ROOT / "models" / "vocoder.safetensors").get(
        "total_steps", read_metadata(ROOT / "models" / "vocoder.safetensors")["step"]))
    assert first["steps_this_run"] == 2 and first["total_steps"] == bundled + 2
    assert first["device"] == "cpu"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["valid_bits"] and metrics["samples_per_s"] > 0
    # the bundled run's recipe goes on: its noise injection and its added packs
    recorded = json.loads(read_metadata(ROOT / "models" / "vocoder.safetensors")[
        "train_settings"])
    assert metrics["settings"]["input_noise"] == recorded.get("input_noise", 0.0)
    assert metrics["settings"]["input_noise_domain"] == recorded.get("input_noise_domain",
                                                                     "signal")
    assert metrics["settings"]["input_noise_law"] == recorded.get("input_noise_law",
                                                                  "gaussian")
    assert [Path(p).name for p in metrics["settings"]["add_corpus"]] == [
        Path(p).name for p in recorded.get("add_corpus", ())]
    model = load_checkpoint(out / "model.safetensors")
    assert model.config.num_speakers == 0 and model.config.mel_channels == 80
    second = _run(out, blocker)
    assert second["total_steps"] == bundled + 4 and second["steps_this_run"] == 2
    assert (ROOT / "training" / "vocoder-subset.npz").stat().st_size < 40 * 2**20


def test_a_run_whose_pack_is_not_in_the_tree_is_refused_by_name(tmp_path):
    import pytest
    import torch
    from safetensors.torch import save_file

    script = script_module("gpu_train")
    ckpt = tmp_path / "model.safetensors"
    save_file({"w": torch.zeros(1)}, str(ckpt), metadata={"train_settings": json.dumps(
        {"input_noise": 0.5, "add_corpus": ["/elsewhere/voices-not-here.npz"]})})
    with pytest.raises(SystemExit, match="voices-not-here.npz"):
        script.recipe_of(ckpt)
    save_file({"w": torch.zeros(1)}, str(ckpt), metadata={"train_settings": json.dumps(
        {"input_noise": 0.5, "add_corpus": ["/elsewhere/kokoro-pack.npz"]})})
    assert script.recipe_of(ckpt) == {
        "input_noise": 0.5, "input_noise_domain": "signal", "input_noise_law": "gaussian",
        "add_corpus": (str(ROOT / "training" / "kokoro-pack.npz"),)}
