"""`wavenet convert --from r9y9` records the feature recipe its hparams (and meanvar file)
say: v0.1.x presets from min_level_db / ref_level_db, master from --meanvar, whose pickled
form is read only with --trust-pickle."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from wavenet_cli.main import main
from wavenet_core import load_checkpoint
from wavenet_core.bench.r9y9_models import random_r9y9
from wavenet_core.model.recipe import FeatureRecipe

pytest.importorskip("wavenet_vocoder")

TINY = dict(out_channels=9, layers=4, stacks=2, residual_channels=4, gate_channels=6,
            skip_out_channels=5, kernel_size=3, cin_channels=3,
            upsample_conditional_features=True, upsample_scales=[4, 4], scalar_input=True)
MASTER_HP = {"stacks": 2, "legacy": True, "sample_rate": 24000, "fft_size": 512,
             "win_length": 400, "fmin": 0, "fmax": None, "highpass_cutoff": 70.0,
             "window": "hann", "log_scale_min": -16.0}


@pytest.fixture(scope="module")
def pth(tmp_path_factory):
    path = tmp_path_factory.mktemp("r9y9") / "m.pth"
    torch.save(random_r9y9(**TINY).state_dict(), path)
    return path


def convert(pth, tmp_path, *extra) -> int:
    return main(["convert", "--from", "r9y9", str(pth), str(tmp_path / "o.safetensors"),
                 *extra])


def test_no_hparams_records_their_ljspeech_v01_recipe(pth, tmp_path, capsys):
    assert convert(pth, tmp_path) == 0
    assert "r9y9 wavenet_vocoder v0.1.x mel" in capsys.readouterr().out
    c = load_checkpoint(tmp_path / "o.safetensors").config
    assert c.features == FeatureRecipe(kind="r9y9", rescaling_max=0.999, stft="lws")
    assert (c.sample_rate, c.mel.fmin, c.mel.fmax) == (22050, 125.0, 7600.0)


def test_v01_hparams_set_every_step(pth, tmp_path):
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({"stacks": 2, "min_level_db": -80, "ref_level_db": 16,
                              "rescaling": False, "preemphasis": 0.97, "use_lws": False}))
    assert convert(pth, tmp_path, "--hparams", str(hp)) == 0
    c = load_checkpoint(tmp_path / "o.safetensors").config
    assert c.features == FeatureRecipe(kind="r9y9", preemphasis=0.97, stft="librosa",
                                       min_level_db=-80.0, ref_level_db=16.0)


def test_master_hparams_need_a_meanvar(pth, tmp_path, capsys):
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps(MASTER_HP))
    assert convert(pth, tmp_path, "--hparams", str(hp)) == 1
    assert "give it with --meanvar" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()


def test_master_with_an_npz_meanvar(pth, tmp_path):
    hp, mv = tmp_path / "hp.json", tmp_path / "meanvar.npz"
    hp.write_text(json.dumps(MASTER_HP))
    np.savez(mv, mean=np.array([-3.0, -2.5, -2.0]), scale=np.array([0.5, 0.75, 1.0]))
    assert convert(pth, tmp_path, "--hparams", str(hp), "--meanvar", str(mv)) == 0
    c = load_checkpoint(tmp_path / "o.safetensors").config
    assert c.features == FeatureRecipe(kind="r9y9-master", highpass_cutoff=70.0,
                                       mean=(-3.0, -2.5, -2.0), scale=(0.5, 0.75, 1.0))
    assert (c.sample_rate, c.mel.n_fft, c.mel.win_length, c.mel.fmax) == (24000, 512, 400, 0.0)


def test_a_joblib_meanvar_is_read_only_with_trust_pickle(pth, tmp_path, capsys):
    joblib = pytest.importorskip("joblib")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    scaler = preprocessing.StandardScaler().fit(
        np.random.default_rng(0).normal(-3, 0.7, (50, 3)))
    hp, mv = tmp_path / "hp.json", tmp_path / "meanvar.joblib"
    hp.write_text(json.dumps(MASTER_HP))
    joblib.dump(scaler, mv)
    assert convert(pth, tmp_path, "--hparams", str(hp), "--meanvar", str(mv)) == 1
    assert "refused" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()
    assert convert(pth, tmp_path, "--hparams", str(hp), "--meanvar", str(mv),
                   "--trust-pickle") == 0
    f = load_checkpoint(tmp_path / "o.safetensors").config.features
    assert f.mean == tuple(scaler.mean_) and f.scale == tuple(scaler.scale_)


@pytest.mark.parametrize("arrays,hparams,message", [
    (dict(mean=np.zeros(4), scale=np.ones(4)), MASTER_HP, "4 bands, the model has 3"),
    (dict(mean=np.zeros(3), scale=np.zeros(3)), MASTER_HP, "scale finite and > 0"),
    (dict(mean=np.zeros(3)), MASTER_HP, "`mean` and `scale`"),
    (dict(mean=np.zeros(3), scale=np.ones(3)), {"stacks": 2, "min_level_db": -100},
     "--meanvar is for r9y9 master"),
])
def test_bad_meanvar_files_are_named(pth, tmp_path, capsys, arrays, hparams, message):
    hp, mv = tmp_path / "hp.json", tmp_path / "mv.npz"
    hp.write_text(json.dumps(hparams))
    np.savez(mv, **arrays)
    assert convert(pth, tmp_path, "--hparams", str(hp), "--meanvar", str(mv)) == 1
    assert message in capsys.readouterr().err


def test_generate_audio_uses_the_recipe_at_the_models_rate(pth, tmp_path):
    """`wavenet generate --audio` (a 16 kHz WAV) gives bitwise the audio of `--mel` with the
    recipe's features of that WAV resampled to the model's 22,050 Hz."""
    from wavenet_core.audio.recipes import model_features
    from wavenet_core.audio.wav import read_wav, write_wav

    assert convert(pth, tmp_path) == 0
    ckpt = tmp_path / "o.safetensors"
    config = load_checkpoint(ckpt).config
    wav, npy = tmp_path / "in.wav", tmp_path / "mel.npy"
    write_wav(wav, np.random.default_rng(1).uniform(-0.5, 0.5, 800), 16000)
    np.save(npy, model_features(read_wav(wav, 22050)[0], config))
    outs = []
    for source in (["--audio", str(wav)], ["--mel", str(npy)]):
        out = tmp_path / f"out{len(outs)}.wav"
        assert main(["generate", str(ckpt), *source, "-o", str(out), "--seed", "3",
                     "--backend", "torch"]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and len(outs[0]) > 44 + 2 * 1000
