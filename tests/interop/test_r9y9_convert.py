"""`wavenet convert --from r9y9`: what it reads, what it refuses, and its defaults."""

from __future__ import annotations

import argparse

import pytest
import torch

from wavenet_cli.main import main
from wavenet_core import load_checkpoint
from wavenet_core.bench.r9y9_models import random_r9y9
from wavenet_core.model.checkpoint import read_metadata

pytest.importorskip("wavenet_vocoder")

TINY = dict(out_channels=9, layers=8, stacks=4, residual_channels=4, gate_channels=6,
            skip_out_channels=5, kernel_size=3, cin_channels=2,
            upsample_conditional_features=True, upsample_scales=[2, 2], scalar_input=True)


def test_a_file_that_needs_unpickling_is_refused(tmp_path, capsys):
    pth = tmp_path / "evil.pth"
    torch.save({"state_dict": random_r9y9(**TINY).state_dict(),
                "hparams": argparse.Namespace(stacks=4)}, pth)
    assert main(["convert", "--from", "r9y9", str(pth), str(tmp_path / "o.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "refused" in err and "arbitrary unpickling" in err and str(pth) in err
    assert not (tmp_path / "o.safetensors").exists()


def test_a_bare_data_parallel_state_dict_converts_with_the_preset_defaults(tmp_path):
    """No --hparams: stacks 4, legacy, log_scale_min log(1e-14) (their LJSpeech preset)."""
    theirs = random_r9y9(**TINY)
    pth, out = tmp_path / "m.pth", tmp_path / "m.safetensors"
    torch.save({"module." + k: v for k, v in theirs.state_dict().items()}, pth)
    assert main(["convert", "--from", "r9y9", str(pth), str(out)]) == 0
    ours = load_checkpoint(out)
    c = ours.config
    assert (c.stacks, c.layers_per_stack, c.kernel_size, c.gate_width, c.mixtures) == (4, 2, 3,
                                                                                       3, 3)
    assert c.upsample_scales == (2, 2) and c.mel.hop_length == 4 and c.log_scale_min < -32
    meta = read_metadata(out)
    assert meta["format_version"] == "2" and meta["converted_from"] == "r9y9 wavenet_vocoder"
    x = torch.rand(1, 1, 12) * 2 - 1
    frames = torch.rand(1, 2, 3)
    with torch.no_grad():
        torch.testing.assert_close(ours(x[:, 0], ours.upsampler(frames), pad=True),
                                   theirs(x, frames), rtol=0, atol=1e-4)


def test_not_a_state_dict_is_named(tmp_path, capsys):
    pth = tmp_path / "list.pth"
    torch.save([1, 2, 3], pth)
    assert main(["convert", "--from", "r9y9", str(pth), str(tmp_path / "o.safetensors")]) == 1
    assert "no state dict" in capsys.readouterr().err


def test_wavenet_generate_vocodes_with_a_converted_model(tmp_path):
    import numpy as np

    from wavenet_core.audio.wav import read_wav

    pth, ckpt = tmp_path / "m.pth", tmp_path / "m.safetensors"
    torch.save(random_r9y9(**TINY).state_dict(), pth)
    assert main(["convert", "--from", "r9y9", str(pth), str(ckpt)]) == 0
    mel = tmp_path / "mel.npy"
    np.save(mel, np.random.default_rng(0).random((6, 2)).astype(np.float32))
    wav = tmp_path / "out.wav"
    assert main(["generate", str(ckpt), "--mel", str(mel), "-o", str(wav), "--chunk", "7"]) == 0
    audio, rate = read_wav(wav, 22050)
    assert rate == 22050 and len(audio) == 6 * 4 and np.abs(audio).max() > 0


def test_without_weight_normalization_and_with_speakers(tmp_path):
    theirs = random_r9y9(**{**TINY, "weight_normalization": False, "gin_channels": 3,
                            "n_speakers": 2, "kernel_size": 2})
    pth, out = tmp_path / "m.pth", tmp_path / "m.safetensors"
    torch.save({"state_dict": theirs.state_dict()}, pth)
    assert main(["convert", "--from", "r9y9", str(pth), str(out)]) == 0
    ours = load_checkpoint(out)
    x, frames = torch.rand(1, 1, 12) * 2 - 1, torch.rand(1, 2, 3)
    with torch.no_grad():
        torch.testing.assert_close(
            ours(x[:, 0], ours.upsampler(frames), torch.tensor([1]), pad=True),
            theirs(x, frames, torch.tensor([[1]])), rtol=0, atol=1e-4)


def test_unsupported_variants_are_named(tmp_path, capsys):
    pth = tmp_path / "m.pth"
    torch.save(random_r9y9(**{**TINY, "upsample_conditional_features": False}).state_dict(),
               pth)
    assert main(["convert", "--from", "r9y9", str(pth), str(tmp_path / "o.safetensors")]) == 1
    assert "upsample_conditional_features=False" in capsys.readouterr().err
