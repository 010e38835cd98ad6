"""Griffin-Lim from a log-mel, and the quality report's metric functions."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from wavenet_core.config import MelConfig
from wavenet_core.griffin_lim import griffin_lim, mel_to_linear
from wavenet_core.mel import log_mel, mel_filterbank

SR = 16000
CFG = MelConfig()


def _quality():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "quality.py"
    spec = importlib.util.spec_from_file_location("quality_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    q = _quality()
    x = harmonic(0.6)
    noise = np.random.default_rng(0).standard_normal(len(x)).astype(np.float32) * 0.3
    assert q.mel_distance_db(x, x, SR, CFG) == pytest.approx(0.0, abs=1e-6)
    assert q.stoi_score(x, x, SR) == pytest.approx(1.0, abs=1e-3)
    assert q.mel_distance_db(x, noise, SR, CFG) > 10.0
    assert q.stoi_score(x, x + 3 * noise, SR) < 0.7
    # Lengths are aligned (trimmed to the shorter) before comparing.
    assert q.mel_distance_db(x, np.concatenate([x, noise]), SR, CFG) == pytest.approx(0.0,
                                                                                        abs=1e-6)


def test_choose_utterances_round_robin():
    q = _quality()
    utts = [{"path": f"valid/{s}_{j}.wav", "speaker": s, "speaker_id": k, "split": "valid"}
            for k, s in enumerate("abc") for j in range(2)]
    manifest = {"speakers": list("abc"), "utterances": utts}
    picked = [u["path"] for u in q.choose_utterances(manifest, 5)]
    assert picked == ["valid/a_0.wav", "valid/b_1.wav", "valid/c_0.wav",
                      "valid/a_1.wav", "valid/b_0.wav"]
    assert {u["speaker"] for u in q.choose_utterances(manifest, 4, ["c"])} == {"c"}


def test_quality_report_end_to_end(tiny_corpus, tmp_path):
    """The whole report on tiny random checkpoints: JSON and markdown come out complete."""
    import json

    from wavenet_core.checkpoint import save_checkpoint
    from wavenet_core.config import WaveNetConfig
    from wavenet_core.model import WaveNet

    paths = {}
    for name, mel_channels in (("vocoder", CFG.n_mels), ("babble", 0)):
        config = WaveNetConfig(layers_per_stack=3, stacks=1, residual_channels=4,
                               skip_channels=4, mel_channels=mel_channels, num_speakers=2)
        paths[name] = tmp_path / f"{name}.safetensors"
        save_checkpoint(paths[name], WaveNet(config), {"speakers": json.dumps(["s0", "s1"]),
                                                       "step": "7"})
    out, table = tmp_path / "report.json", tmp_path / "table.md"
    assert _quality().main([
        "--vocoder", str(paths["vocoder"]), "--babble", str(paths["babble"]),
        "--corpus", str(tiny_corpus), "--utterances", "2", "--seconds-limit", "0.05",
        "--backend", "torch", "--gl-iterations", "2", "--nll-window", "1000",
        "--out", str(out), "--markdown", str(table)]) == 0
    report = json.loads(out.read_text())
    assert [u["speaker"] for u in report["utterances"]] == ["s0", "s1"]
    assert set(report["nll"]) == {"vocoder", "babble"}
    assert all(0 < n["trained_bits"] < 9 for n in report["nll"].values())
    assert "Griffin-Lim" in table.read_text() and "| babble (7) |" in table.read_text()
