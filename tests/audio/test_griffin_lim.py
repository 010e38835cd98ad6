"""Griffin-Lim from a log-mel, and the quality report's metric functions."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.packaging import benchmark_module
from wavenet_core.audio.griffin_lim import griffin_lim, mel_to_linear
from wavenet_core.audio.mel import log_mel, mel_filterbank
from wavenet_core.model.config import MelConfig

SR = 16000
CFG = MelConfig()


def _load(name: str):
    return benchmark_module(name)


def _quality():
    return _load("quality")


def _metrics():
    return _load("quality_metrics")


def harmonic(seconds: float = 1.0) -> np.ndarray:
    """A gliding 150 Hz tone with 11 harmonics, amplitude ~0.7."""
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(150.0 * (1 + 0.2 * t)) / SR
    return sum(0.3 / k * np.sin(k * phase) for k in range(1, 12)).astype(np.float32)


def test_mel_to_linear_fits_the_mel():
    mel = np.exp(log_mel(harmonic(0.5), SR, CFG))
    linear = mel_to_linear(mel, SR, CFG)
    assert linear.shape == (mel.shape[0], CFG.n_fft // 2 + 1)
    assert linear.min() >= 0.0
    refit = linear @ mel_filterbank(SR, CFG).T
    assert np.linalg.norm(refit - mel) / np.linalg.norm(mel) < 0.02


def test_griffin_lim_reconstructs_the_log_mel():
    x = harmonic(0.5)
    mel = log_mel(x, SR, CFG)
    y = griffin_lim(mel, SR, CFG, iterations=20, num_samples=len(x))
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.isfinite(y).all()
    diff = np.abs(log_mel(y, SR, CFG) - mel)
    assert diff.mean() < 0.6, diff.mean()          # natural-log units (~5 dB)
    # Deterministic for a seed; default length is (frames - 1) * hop.
    assert np.array_equal(griffin_lim(mel, SR, CFG, iterations=2, seed=3),
                          griffin_lim(mel, SR, CFG, iterations=2, seed=3))
    assert len(griffin_lim(mel, SR, CFG, iterations=2)) == (len(mel) - 1) * CFG.hop_length


def test_griffin_lim_rejects_bad_mels():
    with pytest.raises(ValueError):
        griffin_lim(np.zeros((10, 7), np.float32), SR, CFG)
    with pytest.raises(ValueError):
        griffin_lim(np.full((10, CFG.n_mels), np.nan, np.float32), SR, CFG)


def test_quality_metrics():
    q = _metrics()
    x = harmonic(0.6)
    noise = np.random.default_rng(0).standard_normal(len(x)).astype(np.float32) * 0.3
    assert q.mel_distance_db(x, x, SR, CFG) == pytest.approx(0.0, abs=1e-6)
    assert q.stoi_score(x, x, SR) == pytest.approx(1.0, abs=1e-3)
    assert q.mel_distance_db(x, noise, SR, CFG) > 10.0
    assert q.stoi_score(x, x + 3 * noise, SR) < 0.7
    # Lengths are aligned (trimmed to the shorter) before comparing.
    assert q.mel_distance_db(x, np.concatenate([x, noise]), SR, CFG) == pytest.approx(0.0,
                                                                                        abs=1e-6)


def _speechlike(seconds: float = 2.0) -> np.ndarray:
    """Syllables: a harmonic tone switched on and off at 4 Hz, with a moving formant."""
    x = harmonic(seconds)
    t = np.arange(len(x)) / SR
    return (x * (0.5 + 0.5 * np.sign(np.sin(2 * np.pi * 4 * t))) * 0.9).astype(np.float32)


def test_pesq_and_dnsmos_rank_noise_below_clean_offline(monkeypatch):
    """Wideband PESQ and DNSMOS run from the installed wheels, with the network cut."""
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("the quality metrics tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    q = _metrics()
    q._dnsmos.cache_clear()
    x = _speechlike()
    noisy = np.clip(x + np.random.default_rng(1).standard_normal(len(x)) * 0.2, -1, 1)
    assert q.pesq_wb(x, x, SR) > 4.0
    assert q.pesq_wb(x, noisy, SR) < q.pesq_wb(x, x, SR) - 1.0
    assert np.isnan(q.pesq_wb(x, np.zeros_like(x), SR))  # no speech: NaN, not a crash
    clean, bad = q.dnsmos_scores(x, SR), q.dnsmos_scores(noisy.astype(np.float32), SR)
    assert set(clean) == {"ovrl", "sig", "bak", "p808"}
    assert all(1.0 <= v <= 5.0 for v in clean.values())
    assert bad["ovrl"] < clean["ovrl"] and bad["bak"] < clean["bak"]
    with pytest.raises(ValueError):
        q.dnsmos_scores(x, 8000)


def test_choose_utterances_round_robin():
    q = _quality()
    utts = [{"path": f"test/{s}_{j}.wav", "speaker": s, "speaker_id": -1, "split": "test"}
            for s in "abc" for j in range(2)]
    utts.append({"path": "valid/z_0.wav", "speaker": "z", "speaker_id": 0, "split": "valid"})
    manifest = {"speakers": ["z"], "held_out_speakers": list("abc"), "utterances": utts}
    picked = [u["path"] for u in q.choose_utterances(manifest, 5)]
    assert picked == ["test/a_0.wav", "test/b_1.wav", "test/c_0.wav",
                      "test/a_1.wav", "test/b_0.wav"]
    assert [u["path"] for u in q.choose_utterances(manifest, 4, "valid")] == ["valid/z_0.wav"]
    assert q.speaker_for(utts[0], ["z"]) == 0 and q.speaker_for(utts[-1], ["q", "z"]) == 1


def test_quality_report_end_to_end(tiny_corpus, tmp_path):
    """The whole report on tiny random vocoders (speaker-conditioned and universal)."""
    import json

    from wavenet_core.model.checkpoint import save_checkpoint
    from wavenet_core.model.config import WaveNetConfig
    from wavenet_core.model.wavenet import WaveNet

    paths = []
    for name, speakers in (("speakers", 2), ("universal", 0)):
        config = WaveNetConfig(layers_per_stack=3, stacks=1, residual_channels=4,
                               skip_channels=4, mel_channels=CFG.n_mels, num_speakers=speakers)
        paths.append(tmp_path / f"{name}.safetensors")
        save_checkpoint(paths[-1], WaveNet(config), {"speakers": json.dumps(["s0", "s1"]),
                                                     "step": "7"})
    out, table = tmp_path / "report.json", tmp_path / "table.md"
    assert _quality().main([
        "--vocoder", str(paths[0]), "--vocoder", str(paths[1]), "--corpus", str(tiny_corpus),
        "--split", "valid", "--utterances", "2", "--seconds-limit", "0.1",
        "--backend", "torch", "--gl-iterations", "2", "--nll-window", "1000",
        "--out", str(out), "--markdown", str(table)]) == 0
    report = json.loads(out.read_text())
    assert [u["speaker"] for u in report["utterances"]] == ["s0", "s1"]
    assert set(report["nll"]) == {"speakers.safetensors", "universal.safetensors"}
    assert all(0 < n["trained_bits"] < 9 for n in report["nll"].values())
    systems = {"vocoder0", "vocoder1", "griffin_lim", "untrained", "mulaw", "original"}
    assert set(report["summary"]) == systems
    for row in report["utterances"]:
        assert all(np.isfinite(row[k]["dnsmos_ovrl"]) for k in systems)
        assert row["original"]["mel_distance_db"] == pytest.approx(0.0, abs=1e-6)
    text = table.read_text()
    assert "Griffin-Lim" in text and "DNSMOS OVRL" in text and "PESQ-WB" in text
    assert "| speakers.safetensors (7) |" in text and "universal, step 7" in text
