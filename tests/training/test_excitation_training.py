"""Training an excitation model (docs/excitation.md): utterances keep each sample's linear
prediction and the codes of the excitation, windows align them like the mel, a pack gives
the same from its codes, and `wavenet train --excitation lpc` lowers the loss."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from tests.helpers.tiny_models import TINY_TRAINING as TINY
from wavenet_cli.main import main as cli_main
from wavenet_core import load_checkpoint
from wavenet_core.audio.lpc import lpc_window, prediction
from wavenet_core.audio.mulaw import mulaw_compress, mulaw_decode, mulaw_encode_exact
from wavenet_core.model.checkpoint import read_metadata
from wavenet_core.training.data import fixed_batches, load_utterances
from wavenet_core.training.pack import write_pack
from wavenet_core.training.utterance import InputNoise, _closed_loop

EXCITATION = dataclasses.replace(TINY, num_speakers=0, excitation="lpc", lpc_order=12)


def test_utterances_hold_the_prediction_and_the_excitation_codes(tiny_corpus):
    utt = load_utterances(tiny_corpus, "train", EXCITATION, EXCITATION.receptive_field)[0]
    plain = load_utterances(tiny_corpus, "train", TINY, TINY.receptive_field)[0]
    x = mulaw_decode(plain.codes)                       # the audio, up to mu-law rounding
    rows = lpc_window(utt.mel, EXCITATION, 0, len(utt.codes))
    assert np.abs(mulaw_decode(utt.codes) - x).max() < 0.01
    np.testing.assert_allclose(utt.prediction, prediction(x, rows), atol=0.02)
    excitation = mulaw_decode(utt.targets)
    # the chirp is predictable: the excitation carries far less energy than the audio
    assert np.sum(excitation ** 2) < 0.1 * np.sum(mulaw_decode(utt.codes) ** 2)


def test_windows_align_inputs_predictions_and_excitation_targets(tiny_corpus):
    utts = load_utterances(tiny_corpus, "train", EXCITATION, EXCITATION.receptive_field)
    field, length = EXCITATION.receptive_field, 50
    batch = fixed_batches(utts, EXCITATION, 2, length)[0]
    u = utts[0]                                         # window 0 starts at sample 0
    assert batch.prediction.shape == (2, field - 1 + length)
    np.testing.assert_array_equal(batch.inputs[0], u.codes[:field - 1 + length])
    np.testing.assert_array_equal(batch.prediction[0], u.prediction[1:field + length])
    np.testing.assert_array_equal(batch.targets[0], u.targets[field:field + length])
    # the prediction of sample t reads only the samples before it
    x = mulaw_decode(u.codes[:field + length]).astype(np.float32)
    rows = lpc_window(u.mel, EXCITATION, 0, field + length)
    np.testing.assert_array_equal(prediction(x, rows)[:-1], prediction(x[:-1], rows[:-1]))


def test_a_pack_gives_the_excitation_of_its_decoded_codes(tiny_corpus, tmp_path):
    from wavenet_core.model.config import MelConfig

    config = dataclasses.replace(EXCITATION, mel=MelConfig(n_mels=20, hop_length=256))
    pad = config.receptive_field
    path = tmp_path / "pack.npz"
    write_pack(tiny_corpus, path, minutes=0.01, valid_minutes=0.01, pad=pad,
               mel=config.mel)
    utt = load_utterances(path, "train", config, pad)[0]
    x = mulaw_decode(utt.codes)
    np.testing.assert_array_equal(utt.codes, mulaw_encode_exact(x))
    p = prediction(x, lpc_window(utt.mel, config, 0, len(x)))
    np.testing.assert_array_equal(utt.prediction, p)
    np.testing.assert_array_equal(utt.targets, mulaw_encode_exact(x - p))


@pytest.mark.parametrize("noise,domain,law", [("0", "signal", "gaussian"),
                                              ("1.5", "signal", "gaussian"),
                                              ("1.5", "excitation", "lpcnet")])
def test_train_command_trains_an_excitation_model(tiny_corpus, tmp_path, noise, domain, law):
    code = cli_main(["train", "--corpus", str(tiny_corpus), "--out", str(tmp_path / "run"),
                     "--layers-per-stack", "3", "--stacks", "1", "--residual-channels", "8",
                     "--skip-channels", "16", "--mel", "--excitation", "lpc",
                     "--lpc-order", "10", "--steps", "30", "--batch-size", "4",
                     "--window", "200", "--lr", "1e-2", "--warmup", "5", "--valid-windows",
                     "4", "--valid-every", "30", "--threads", "1", "--input-noise", noise,
                     "--input-noise-domain", domain, "--input-noise-law", law])
    assert code == 0
    model = load_checkpoint(tmp_path / "run/model.safetensors")
    assert model.config.excitation == "lpc" and model.config.lpc_order == 10
    records = [json.loads(line) for line in
               (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert sum(r["loss"] for r in records[-5:]) / 5 < records[0]["loss"] - 0.5
    assert np.isfinite(records[-1]["valid_bits"])
    settings = json.loads(read_metadata(tmp_path / "run/model.safetensors")["train_settings"])
    assert settings["input_noise"] == float(noise)
    assert settings["input_noise_domain"] == domain
    assert settings["input_noise_law"] == law


def test_input_noise_perturbs_inputs_and_predictions_but_not_the_clean_target(tiny_corpus):
    """LPCNet's noise injection: inputs and p from a noisy history, targets the clean x
    minus that p; zero noise is the clean utterance exactly."""
    pad = EXCITATION.receptive_field
    clean = load_utterances(tiny_corpus, "train", EXCITATION, pad)[0]
    same = load_utterances(tiny_corpus, "train", EXCITATION, pad,
                           noise=InputNoise(0.0, np.random.default_rng(0)))[0]
    for field in ("codes", "prediction", "targets"):
        np.testing.assert_array_equal(getattr(same, field), getattr(clean, field))
    noisy = load_utterances(tiny_corpus, "train", EXCITATION, pad,
                            noise=InputNoise(2.0, np.random.default_rng(0)))[0]
    steps = noisy.codes.astype(int) - clean.codes.astype(int)
    assert 0.2 < np.mean(steps != 0) and np.abs(steps).max() <= 12    # a few mu-law steps
    assert 1.0 < np.std(steps) < 3.0
    x_seen = mulaw_decode(noisy.codes)
    rows = lpc_window(noisy.mel, EXCITATION, 0, len(x_seen))
    # p reads the noisy history (up to the mu-law rounding of the seen samples)
    np.testing.assert_allclose(noisy.prediction, prediction(x_seen, rows), atol=0.03)
    assert np.abs(noisy.prediction - clean.prediction).max() > 1e-3
    # the target is the clean signal minus the noisy prediction
    x = mulaw_decode(clean.codes)
    assert np.abs(mulaw_decode(noisy.targets) - (x - noisy.prediction)).max() < 0.03
    again = load_utterances(tiny_corpus, "train", EXCITATION, pad,
                            noise=InputNoise(2.0, np.random.default_rng(0)))[0]
    np.testing.assert_array_equal(again.codes, noisy.codes)       # seeded


def test_excitation_domain_noise_is_a_closed_loop_on_the_excitations_mu_law():
    """s_t = p_t + e~_t with p_t from s itself and compress(e~_t) = compress(x_t - p_t) +
    draw_t; with no draws the loop gives x back."""
    rng = np.random.default_rng(0)
    n, order = 3000, 2
    a = np.array([-2 * 0.9 * np.cos(0.3), 0.81], np.float32)
    x = np.zeros(n, np.float32)
    drive = 0.03 * rng.standard_normal(n)
    for t in range(n):
        x[t] = drive[t] - a[0] * (x[t - 1] if t else 0) - a[1] * (x[t - 2] if t > 1 else 0)
    x *= 0.6 / np.abs(x).max()
    rows = np.tile(a, (n, 1))
    np.testing.assert_allclose(_closed_loop(x, rows, np.zeros(n), 255.0), x, atol=1e-6)
    noise = InputNoise(1.0, np.random.default_rng(1), "excitation")
    s = noise.noisy(x, rows, 256)
    draws = np.random.default_rng(1).standard_normal(n) * (2.0 / 255)
    history = np.stack([np.concatenate([np.zeros(j + 1), s[:n - j - 1]])
                        for j in range(order)], 1)
    p = -(history * rows).sum(1)
    got = mulaw_compress(s - p, 255) - mulaw_compress(x - p, 255)
    np.testing.assert_allclose(got, draws, atol=1e-4)
    # the same steps in the signal's mu-law: several times the excitation's here
    signal = InputNoise(1.0, np.random.default_rng(1)).noisy(x, rows, 256)
    assert np.std(signal - x) > 3 * np.std(s - x)
    with pytest.raises(ValueError, match="domain"):
        InputNoise(1.0, rng, "spectrum")


def test_lpcnet_law_draws_a_long_tailed_deviation_per_utterance_and_laplacian_noise():
    """Mean deviation `steps`, a tail of large ones, and per utterance a Laplacian
    (kurtosis 6, a Gaussian's is 3) of that deviation; the gaussian law's is fixed."""
    law = InputNoise(1.5, np.random.default_rng(3), "excitation", "lpcnet")
    deviations = np.array([law.deviation() for _ in range(20000)])
    assert abs(deviations.mean() - 1.5) < 0.05
    assert np.percentile(deviations, 95) > 2.4 * 1.5 > 2 * np.median(deviations)
    draws = law.draws(200000, 255) * 255 / 2
    assert 5.0 < np.mean(draws ** 4) / np.mean(draws ** 2) ** 2 < 7.0
    fixed = InputNoise(1.5, np.random.default_rng(3))
    assert {fixed.deviation() for _ in range(10)} == {1.5}
    steps = fixed.draws(200000, 255) * 255 / 2
    assert abs(np.std(steps) - 1.5) < 0.02
    assert 2.8 < np.mean(steps ** 4) / np.mean(steps ** 2) ** 2 < 3.2
    with pytest.raises(ValueError, match="law"):
        InputNoise(1.0, np.random.default_rng(0), "signal", "uniform")


def test_train_refuses_input_noise_for_a_plain_model(tiny_corpus, tmp_path):
    with pytest.raises(ValueError, match="excitation"):
        cli_main(["train", "--corpus", str(tiny_corpus), "--out", str(tmp_path / "run"),
                  "--layers-per-stack", "2", "--stacks", "1", "--residual-channels", "8",
                  "--skip-channels", "8", "--mel", "--steps", "2", "--batch-size", "2",
                  "--window", "50", "--input-noise", "1", "--threads", "1"])
