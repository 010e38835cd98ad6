"""The synthetic corpus: deterministic text, disjoint splits, 16 kHz mono WAVs, a manifest."""

from __future__ import annotations

import shutil
import wave

import numpy as np
import pytest

from wavenet_cli.main import main as cli_main
from wavenet_core.text.speech import SpeechError, trim_and_normalise
from wavenet_core.text.voices import available_voices
from wavenet_core.training.corpus import (
    CorpusError,
    build_corpus,
    load_manifest,
    make_sentences,
    split_texts,
)


def test_sentences_are_deterministic_and_distinct():
    a, b = make_sentences(300, seed=3), make_sentences(300, seed=3)
    assert a == b
    assert len(set(a)) == 300
    assert make_sentences(300, seed=4) != a
    assert any(s.endswith("?") for s in a) and any(ch.isdigit() for s in a for ch in s)


def test_split_texts_never_trains_on_valid():
    valid, train = split_texts(num_speakers=5, sentences_per_speaker=40, valid_fraction=0.1)
    assert len(valid) == 4 and all(len(t) == 36 for t in train)
    seen = [s for texts in train for s in texts]
    assert len(set(seen)) == len(seen)  # each speaker reads its own sentences
    assert not set(valid) & set(seen)
    assert split_texts(5, 40, 0.1) == (valid, train)
    with pytest.raises(CorpusError):
        split_texts(3, 1, 0.1)


def test_trim_and_normalise():
    sr = 16000
    tone = 0.3 * np.sin(np.arange(sr) * 2 * np.pi * 200 / sr)
    audio = np.concatenate([np.zeros(sr), tone, np.zeros(sr)]).astype(np.float32)
    out = trim_and_normalise(audio, sr)
    assert sr <= len(out) <= sr + 2 * 800 + 160
    assert abs(np.max(np.abs(out)) - 0.9) < 1e-6
    with pytest.raises(SpeechError):
        trim_and_normalise(np.zeros(sr, np.float32), sr)


def test_no_synthesizer_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="apt-get install"):
        build_corpus(tmp_path, voices=[], progress=False)
    with pytest.raises(CorpusError, match="no manifest"):
        load_manifest(tmp_path / "nothing")


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="espeak-ng is not installed (apt-get install -y espeak-ng)")
def test_tiny_corpus(tmp_path, capsys):
    voices = [v for v in available_voices() if v.engine == "espeak-ng"][:2]
    assert len(voices) == 2
    built = build_corpus(tmp_path, sentences_per_speaker=2, voices=voices, progress=False)
    manifest = load_manifest(tmp_path)
    assert manifest == built
    assert manifest["sample_rate"] == 16000
    assert manifest["speakers"] == [v.name for v in voices]
    utts = manifest["utterances"]
    assert len(utts) == 4
    for u in utts:
        assert manifest["speakers"][u["speaker_id"]] == u["speaker"]
        with wave.open(str(tmp_path / u["path"])) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
            assert w.getnframes() == u["num_samples"] > 16000 // 4
        assert u["path"].startswith(u["split"] + "/")
    train = {u["text"] for u in utts if u["split"] == "train"}
    valid = {u["text"] for u in utts if u["split"] == "valid"}
    assert train and valid and not train & valid
    for sid in (0, 1):  # every speaker renders the same held-out sentences
        mine = {u["text"] for u in utts if u["split"] == "valid" and u["speaker_id"] == sid}
        assert mine == valid
    assert cli_main(["corpus", "--list-voices"]) == 0
    assert voices[0].name in capsys.readouterr().out


def test_voice_list_and_held_out_voices_are_fixed():
    from wavenet_core.text.voices import HELD_OUT, VOICES
    from wavenet_core.text.voices import SERVED_VOICES as _FIRST

    names = [v.name for v in VOICES]
    assert len(names) == len(set(names)) > 100
    assert HELD_OUT <= set(names) and len(HELD_OUT) == 18
    assert not HELD_OUT & {v.name for v in _FIRST}  # the bundled models never heard them
    assert all(" " not in v.voice for v in VOICES)


def test_no_kokoro_voice_that_trains_draws_on_a_held_out_one():
    from wavenet_core.text.kokoro import blend_names
    from wavenet_core.text.voices import HELD_OUT, KOKORO_VOICES

    held = {n.removeprefix("kokoro-") for n in HELD_OUT if n.startswith("kokoro-")}
    assert held == {"jf_alpha", "jf_tebukuro", "jm_kumo"}
    training = [v for v in KOKORO_VOICES if v.name not in HELD_OUT]
    assert len(training) == 8
    for v in training:
        assert not set(blend_names(v.voice)) & held, v


def test_kokoro_style_blends_and_refuses_unknown_voices():
    from wavenet_core.text.kokoro import style

    styles = {"a": np.full((3, 1, 4), 1.0), "b": np.full((3, 1, 4), 5.0)}
    assert np.allclose(style("a", styles), 1.0)
    assert np.allclose(style("a*0.75+b*0.25", styles), 2.0)
    for bad in ("c", "a*0.5+b*0.6", "a*0.5+c*0.5"):
        with pytest.raises(ValueError, match="kokoro voice"):
            style(bad, styles)


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="espeak-ng is not installed (apt-get install -y espeak-ng)")
def test_corpus_engine_option_keeps_only_that_engine(capsys):
    assert cli_main(["corpus", "--list-voices", "--engine", "espeak-ng"]) == 0
    engines = {line.split("\t")[2] for line in capsys.readouterr().out.splitlines()}
    assert engines == {"espeak-ng"}


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="espeak-ng is not installed (apt-get install -y espeak-ng)")
def test_held_out_voices_read_only_held_out_sentences(tmp_path):
    voices = [v for v in available_voices() if v.engine == "espeak-ng"][:3]
    built = build_corpus(tmp_path, sentences_per_speaker=3, valid_fraction=0.34, voices=voices,
                         progress=False, held_out=frozenset({voices[1].name}))
    assert built["speakers"] == [voices[0].name, voices[2].name]
    assert built["held_out_speakers"] == [voices[1].name]
    test = [u for u in built["utterances"] if u["split"] == "test"]
    valid = {u["text"] for u in built["utterances"] if u["split"] == "valid"}
    assert {u["speaker"] for u in test} == {voices[1].name} and test[0]["speaker_id"] == -1
    assert {u["text"] for u in test} == valid
    assert not any(u["speaker"] == voices[1].name for u in built["utterances"]
                   if u["split"] != "test")
    # Resuming a build keeps the WAVs already rendered.
    first = tmp_path / test[0]["path"]
    stamp = first.stat().st_mtime_ns
    again = build_corpus(tmp_path, sentences_per_speaker=3, valid_fraction=0.34, voices=voices,
                         progress=False, held_out=frozenset({voices[1].name}),
                         keep_existing=True)
    assert again["utterances"] == built["utterances"] and first.stat().st_mtime_ns == stamp
