"""`wavenet precision-cost` on converted r9y9 models (mixture of logistics, Gaussian):
the kernel's teacher-forced fp32 NLL is the NLL of the torch model's full forward on the
same windows, and `--write` records costs that precision `auto` then reads. Tiny random
models built with their code, converted through the real files, on the tiny corpus
(16 kHz, resampled to the converted model's 22,050 Hz)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.helpers.r9y9_convert import convert
from wavenet_cli.main import main
from wavenet_core.audio.wav import read_wav
from wavenet_core.bench.precision_cost import kernel_bits
from wavenet_core.bench.r9y9_models import random_r9y9
from wavenet_core.generation.cpu.backend import CpuBackend
from wavenet_core.generation.precision import cpu_candidates, recorded_costs
from wavenet_core.generation.registry import make_backend
from wavenet_core.generation.scalar_nll import bits, scalar_nll
from wavenet_core.model.checkpoint import load_checkpoint
from wavenet_core.training.scalar_windows import scalar_batches, scalar_track

pytest.importorskip("wavenet_vocoder")
pytest.importorskip("numba")


def tiny(kind: str):
    return random_r9y9(seed=4, scale=0.3, out_channels=30 if kind == "mol" else 2, layers=4,
                       stacks=2, residual_channels=6, gate_channels=8, skip_out_channels=5,
                       kernel_size=3, cin_channels=3, gin_channels=4, n_speakers=2,
                       upsample_conditional_features=True, upsample_scales=[2, 2],
                       freq_axis_kernel_size=3, scalar_input=True)


def held_out(corpus, model):
    manifest = json.loads((corpus / "manifest.json").read_text())
    return [scalar_track(read_wav(corpus / u["path"], model.config.sample_rate)[0],
                         u["speaker_id"], model.config, model.upsampler)
            for u in manifest["utterances"] if u["split"] == "valid"]


@pytest.mark.parametrize("kind", ["mol", "gaussian"])
def test_kernel_nll_equals_the_full_forward_nll(kind, tiny_corpus, tmp_path):
    model = convert(tiny(kind), kind, tmp_path)
    config = model.config
    tracks = held_out(tiny_corpus, model)
    # the signal: their rescaled audio after lws's n_fft - hop leading zeros; a row a sample
    audio = read_wav(tiny_corpus / "valid/s0_0.wav", config.sample_rate)[0]
    lead = config.mel.n_fft - config.mel.hop_length
    np.testing.assert_allclose(tracks[0].signal[lead:lead + 500],
                               audio[:500] / np.abs(audio).max() * 0.999, atol=1e-6)
    assert not tracks[0].signal[:lead].any() and len(tracks[0].rows) == len(tracks[0].signal)
    batches = scalar_batches(tracks[:2], config, 6, 1000)
    assert len({int(s) for b in batches for s in b.speaker}) == 2
    got = kernel_bits(CpuBackend(model, threads=2), batches)
    field, total, count = config.receptive_field, 0.0, 0
    with torch.no_grad():
        for b in batches:
            out = model(torch.from_numpy(b.inputs), torch.from_numpy(b.rows).transpose(1, 2),
                        torch.from_numpy(b.speaker), pad=True)
            params = out.transpose(1, 2)[:, field - 1:].double().numpy()
            total += float(scalar_nll(params, b.targets, config).sum())
            count += b.targets.size
    expected = float(bits(total / count))
    assert np.isfinite(got) and abs(got - expected) < 1e-4


def test_write_records_costs_that_auto_reads(tiny_corpus, tmp_path, capsys):
    convert(tiny("mol"), "mol", tmp_path)
    path = tmp_path / "ours.safetensors"
    assert recorded_costs(path) == {}
    assert main(["precision-cost", str(path), "--corpus", str(tiny_corpus), "--utterances",
                 "2", "--window", "300", "--threads", "1", "--write"]) == 0
    printed = json.loads([line for line in capsys.readouterr().out.splitlines()
                          if line.startswith("{")][-1])
    costs = recorded_costs(path)
    assert costs == printed["cost_bits"] and set(costs) == {"bf16", "int8", "bf16a", "int8a"}
    assert all(np.isfinite(v) for v in printed["nll_bits"].values())
    backend = make_backend(load_checkpoint(path), "cpu", "cpu", "auto", nll_costs=costs,
                           threads=1)
    assert backend.precision in cpu_candidates(costs)


def test_a_pack_is_refused_for_a_scalar_model(tmp_path):
    convert(tiny("gaussian"), "gaussian", tmp_path)
    with pytest.raises(SystemExit, match="8-bit mu-law"):
        main(["precision-cost", str(tmp_path / "ours.safetensors"), "--corpus",
              str(tmp_path / "vocoder-subset.npz")])
