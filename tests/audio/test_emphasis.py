"""Pre-emphasis (wavenet_core/audio/emphasis.py) and the config field that turns it on."""

import dataclasses

import numpy as np
import pytest

from wavenet_core.audio.emphasis import Deemphasis, deemphasize, preemphasize
from wavenet_core.audio.mulaw import mulaw_encode
from wavenet_core.model.config import CONFIG_B, WaveNetConfig
from wavenet_core.training.utterance import make_utterance


def test_deemphasis_inverts_preemphasis():
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 3000).astype(np.float32)
    assert np.allclose(deemphasize(preemphasize(x, 0.85), 0.85), x, atol=1e-6)
    assert np.array_equal(preemphasize(x, 0.0), x)


def test_streams_do_not_depend_on_chunking():
    p = np.random.default_rng(1).uniform(-0.5, 0.5, (3, 1000)).astype(np.float32)
    whole = Deemphasis(0.85, 3)(p)
    chunked = Deemphasis(0.85, 3)
    parts = [chunked(p[:, :1]), chunked(p[:, 1:400]), chunked(p[:, 400:])]
    assert np.allclose(np.concatenate(parts, axis=1), whole, atol=1e-6)
    # rows: only the named streams advance, a reset stream starts from silence again
    d = Deemphasis(0.85, 3)
    d(p[[0, 2], :500], rows=[0, 2])
    d.reset(0)
    assert np.allclose(d(p[[0, 1], :10], rows=[0, 1]), whole[[0, 1], :10], atol=1e-6)


def test_config_field_round_trips_and_stays_out_when_zero():
    assert "preemphasis" not in CONFIG_B.to_dict()
    shaped = dataclasses.replace(CONFIG_B, preemphasis=0.85)
    assert WaveNetConfig.from_json(shaped.to_json()) == shaped
    with pytest.raises(ValueError, match="preemphasis"):
        dataclasses.replace(CONFIG_B, preemphasis=1.0)


def test_training_codes_are_of_the_preemphasized_audio():
    x = np.random.default_rng(2).uniform(-0.5, 0.5, 2000).astype(np.float32)
    config = dataclasses.replace(CONFIG_B, preemphasis=0.85)
    utt = make_utterance(x, 0, config, pad=10)
    padded = np.concatenate([np.zeros(10, np.float32), x])
    assert np.array_equal(utt.codes, mulaw_encode(preemphasize(padded, 0.85)))
