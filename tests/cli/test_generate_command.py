"""`wavenet generate` writes a valid WAV of the asked length from a small random checkpoint."""

from __future__ import annotations

import wave

import numpy as np

from tests.helpers.models import random_model
from wavenet_cli.main import main
from wavenet_core import WaveNetConfig, save_checkpoint
from wavenet_core.audio.wav import write_wav
from wavenet_core.model.config import MelConfig


def test_generate_seconds(tmp_path, capsys):
    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(ckpt, random_model(WaveNetConfig(layers_per_stack=4, stacks=1,
                                                     residual_channels=8, skip_channels=8,
                                                     num_speakers=2)),
                    {"speakers": '["alice", "bob"]'})
    out = tmp_path / "a.wav"
    assert main(["generate", str(ckpt), "-o", str(out), "--seconds", "0.25", "--seed", "3",
                 "--speaker", "bob", "--chunk", "1000"]) == 0
    with wave.open(str(out)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        assert w.getnframes() == 4000
    assert "samples/s" in capsys.readouterr().out
    again = tmp_path / "b.wav"
    main(["generate", str(ckpt), "-o", str(again), "--seconds", "0.25", "--seed", "3",
          "--speaker", "1"])
    assert out.read_bytes() == again.read_bytes()


def test_generate_from_audio_and_mel(tmp_path):
    config = WaveNetConfig(layers_per_stack=3, stacks=1, residual_channels=6, skip_channels=6,
                           mel_channels=10, mel=MelConfig(n_mels=10, n_fft=256, win_length=256,
                                                          hop_length=64))
    ckpt = tmp_path / "voc.safetensors"
    save_checkpoint(ckpt, random_model(config))
    wav = tmp_path / "in.wav"
    write_wav(wav, 0.3 * np.sin(np.arange(3200) / 7.0), 16000)
    out = tmp_path / "re.wav"
    assert main(["generate", str(ckpt), "-o", str(out), "--audio", str(wav),
                 "--backend", "torch"]) == 0
    with wave.open(str(out)) as w:
        assert w.getnframes() == (1 + 3200 // 64) * 64
    mel = tmp_path / "m.npy"
    np.save(mel, np.zeros((20, 10), dtype=np.float32))
    assert main(["generate", str(ckpt), "-o", str(out), "--mel", str(mel),
                 "--backend", "torch"]) == 0
    with wave.open(str(out)) as w:
        assert w.getnframes() == 20 * 64


def test_generate_runs_the_conditioning_network(tmp_path):
    import dataclasses

    import torch

    from wavenet_core import WaveNet
    from wavenet_core.audio.wav import read_wav

    config = WaveNetConfig(layers_per_stack=3, stacks=1, residual_channels=6, skip_channels=6,
                           mel_channels=10, mel_mean=-3.0, mel_std=2.0, cond_layers=2,
                           mel=MelConfig(n_mels=10, n_fft=256, win_length=256, hop_length=64))
    model = random_model(config)
    with torch.no_grad():
        for block in model.cond_net.blocks:      # a network that is not the identity
            block.out.weight.normal_(0, 1.0)
    plain = WaveNet(dataclasses.replace(config, cond_layers=0))
    plain.load_state_dict(model.state_dict(), strict=False)
    mel = tmp_path / "m.npy"
    np.save(mel, np.random.default_rng(0).normal(-3, 2, (20, 10)).astype(np.float32))
    audio = {}
    for name, m in (("cond", model), ("plain", plain)):
        save_checkpoint(tmp_path / f"{name}.safetensors", m)
        out = tmp_path / f"{name}.wav"
        assert main(["generate", str(tmp_path / f"{name}.safetensors"), "-o", str(out),
                     "--mel", str(mel), "--backend", "torch", "--seed", "2"]) == 0
        audio[name] = read_wav(out, 16000)[0]
    assert len(audio["cond"]) == 20 * 64
    assert not np.array_equal(audio["cond"], audio["plain"])
