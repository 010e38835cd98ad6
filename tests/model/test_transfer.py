"""Starting the universal vocoder from a speaker-conditioned checkpoint, and --init-from."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from wavenet_cli.main import main as cli_main
from wavenet_core.model.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from wavenet_core.model.config import MelConfig, WaveNetConfig
from wavenet_core.model.transfer import starting_point, without_speakers
from wavenet_core.model.wavenet import WaveNet

SPEAKERS = WaveNetConfig(layers_per_stack=3, stacks=2, residual_channels=6, skip_channels=8,
                         mel_channels=20, num_speakers=3, speaker_channels=4, mel_mean=-3.0,
                         mel_std=2.0,
                         mel=MelConfig(n_mels=20, n_fft=256, win_length=256, hop_length=64))


def _speaker_model() -> WaveNet:
    torch.manual_seed(1)
    model = WaveNet(SPEAKERS).eval()
    with torch.no_grad():  # non-zero biases and distinct speakers, so the fold matters
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def test_universal_copy_equals_the_mean_speaker():
    model = _speaker_model()
    universal = without_speakers(model).eval()
    assert universal.config.num_speakers == 0
    assert universal.config.mel_mean == -3.0 and universal.speaker_embedding is None
    mean_speaker = copy.deepcopy(model)
    with torch.no_grad():
        mean_speaker.speaker_embedding.weight[0] = model.speaker_embedding.weight.mean(0)
    codes = torch.randint(0, 256, (2, 40))
    local = torch.randn(2, 20, 40) - 3.0
    with torch.no_grad():
        want = mean_speaker(codes, local, torch.tensor([0, 0]))
        got = universal(codes, local)
        other = model(codes, local, torch.tensor([1, 1]))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert (got - other).abs().max() > 1e-3  # not trivially equal to any one speaker


def test_starting_point(tmp_path):
    path = tmp_path / "speakers.safetensors"
    save_checkpoint(path, _speaker_model(), {"step": "40"})
    assert starting_point(path, 0).config.num_speakers == 0
    assert starting_point(path, 3).config.num_speakers == 3
    with pytest.raises(ValueError, match="knows 3 speakers"):
        starting_point(path, 5)


def test_train_init_from_counts_the_steps_already_spent(tiny_corpus, tmp_path):
    start = tmp_path / "start.safetensors"
    save_checkpoint(start, _speaker_model(), {"step": "40"})
    out = tmp_path / "run"
    args = ["train", "--corpus", str(tiny_corpus), "--out", str(out), "--mel",
            "--init-from", str(start), "--steps", "2", "--batch-size", "2", "--window", "64",
            "--warmup", "1", "--valid-windows", "2", "--threads", "1", "--precision", "fp32"]
    assert cli_main(args) == 0
    model = load_checkpoint(out / "model.safetensors")
    assert model.config.num_speakers == 0 and model.config.layers_per_stack == 3
    meta = read_metadata(out / "model.safetensors")
    assert (meta["step"], meta["base_steps"], meta["total_steps"]) == ("2", "40", "42")
    assert cli_main(args[:-12] + ["--steps", "3", "--resume", "--batch-size", "2",
                                  "--window", "64", "--valid-windows", "2", "--threads", "1",
                                  "--precision", "fp32"]) == 0
    meta = read_metadata(out / "model.safetensors")
    assert (meta["step"], meta["total_steps"]) == ("3", "43")
    assert json.loads(meta["train_settings"])["init_from"] == str(start)
