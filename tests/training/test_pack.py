"""The compact training pack (8-bit codes + float16 mels)."""

from __future__ import annotations

import numpy as np
import pytest

from wavenet_core.model.config import WaveNetConfig
from wavenet_core.training.corpus import CorpusError, load_manifest
from wavenet_core.training.data import load_utterances
from wavenet_core.training.pack import choose, load_pack_utterances, write_pack

VOCODER = WaveNetConfig(layers_per_stack=3, stacks=1, mel_channels=80)  # default mel config


def test_pack_holds_exactly_what_training_reads(tiny_corpus, tmp_path):
    pad = VOCODER.receptive_field
    path = tmp_path / "subset.npz"
    info = write_pack(tiny_corpus, path, minutes=0.01, valid_minutes=0.01, pad=pad)
    assert info["seconds"]["train"] >= 0.6 and info["splits"].count("valid") == 2
    assert info["splits"][:2] == ["train", "train"]  # round-robin: s0 then s1
    assert [p.split("/")[1][:2] for p in info["paths"][:2]] == ["s0", "s1"]
    packed = load_utterances(path, "train", VOCODER, pad)
    direct = load_utterances(tiny_corpus, "train", VOCODER, pad)
    train_paths = [p for p, s in zip(info["paths"], info["splits"]) if s == "train"]
    assert len(packed) == len(train_paths) == 2
    by_path = dict(zip([u["path"] for u in load_manifest(tiny_corpus)["utterances"]
                        if u["split"] == "train"], direct))
    for p, utt in zip(train_paths, packed):
        want = by_path[p]
        assert utt.codes.dtype == np.uint8 and np.array_equal(utt.codes, want.codes)
        assert utt.speaker == want.speaker
        np.testing.assert_allclose(utt.mel, want.mel, rtol=2e-3, atol=2e-3)  # float16
    with pytest.raises(CorpusError, match="packed for pad"):
        load_pack_utterances(path, "train", VOCODER, pad + 1)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(CorpusError, match="not a training pack"):
        load_utterances(tmp_path / "bad.npz", "train", VOCODER, pad)


def test_choose_is_round_robin_until_the_budget():
    utts = [{"path": f"train/{s}_{j}.wav", "speaker": s, "split": "train",
             "num_samples": 16000} for s in "ab" for j in range(3)]
    manifest = {"sample_rate": 16000, "speakers": ["a", "b"], "utterances": utts}
    assert [u["path"] for u in choose(manifest, "train", 3.0)] == [
        "train/a_0.wav", "train/b_0.wav", "train/a_1.wav"]
    assert len(choose(manifest, "train", 100.0)) == 6


def test_corpus_command_packs_an_existing_corpus(tiny_corpus, tmp_path, capsys):
    from wavenet_cli.main import main as cli_main

    path = tmp_path / "p.npz"
    assert cli_main(["corpus", "--out", str(tiny_corpus), "--reuse", "--pack", str(path),
                     "--pack-minutes", "0.02", "--pack-valid-minutes", "0.01"]) == 0
    assert "pack:" in capsys.readouterr().out and path.exists()
    utts = load_pack_utterances(path, "valid", VOCODER, 1023)
    assert len(utts) == 2 and all(u.mel.shape[1] == 80 for u in utts)
