"""`wavenet sampling` sets a checkpoint's voicing-shaped default, which `wavenet generate`
then samples with unless `--temperature` is given (docs/voicing.md)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.models import random_model
from tests.helpers.voicing import speech_like_mel
from wavenet_cli.main import main
from wavenet_core import WaveNetConfig, save_checkpoint
from wavenet_core.model.checkpoint import load_config, read_metadata
from wavenet_core.model.config import MelConfig

CONFIG = WaveNetConfig(layers_per_stack=3, stacks=1, residual_channels=6, skip_channels=8,
                       mel_channels=10, mel=MelConfig(n_mels=10, hop_length=32))


def _generate(ckpt, mel, out, *extra) -> bytes:
    assert main(["generate", str(ckpt), "-o", str(out), "--mel", str(mel), "--seed", "4",
                 "--backend", "torch", *extra]) == 0
    return out.read_bytes()


def test_sampling_writes_the_default_and_generate_follows_it(tmp_path, capsys):
    ckpt = tmp_path / "voc.safetensors"
    save_checkpoint(ckpt, random_model(CONFIG), {"speakers": '["a"]'})
    mel = tmp_path / "m.npy"
    np.save(mel, speech_like_mel(CONFIG, 30)[0])
    before = _generate(ckpt, mel, tmp_path / "0.wav")
    assert main(["sampling", str(ckpt)]) == 0
    assert "plain" in capsys.readouterr().out
    assert main(["sampling", str(ckpt), "--voiced-temperature", "0.3",
                 "--voiced-floor", "0.05"]) == 0
    assert "(written)" in capsys.readouterr().out
    config = load_config(ckpt)
    assert (config.voiced_temperature, config.voiced_floor) == (0.3, 0.05)
    assert read_metadata(ckpt)["speakers"] == '["a"]'           # other metadata kept
    shaped = _generate(ckpt, mel, tmp_path / "1.wav")
    assert shaped != before
    assert _generate(ckpt, mel, tmp_path / "2.wav", "--temperature", "1") == before
    assert main(["sampling", str(ckpt), "--off"]) == 0
    assert "voiced_temperature" not in read_metadata(ckpt)["config"]
    assert _generate(ckpt, mel, tmp_path / "3.wav") == before
    with pytest.raises(SystemExit, match="voiced_floor"):
        main(["sampling", str(ckpt), "--voiced-floor", "1.5"])
