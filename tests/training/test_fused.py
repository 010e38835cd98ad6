"""The fused training step (training/fused.py) computes the plain step's loss and gradients:
float32 within float tolerance, bfloat16 no further from float32 than autocast itself;
frame windows give the plain step its rows bitwise; training with either writes the same
files; the benchmark's FLOP count is the products the steps make."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch.utils.flop_counter import FlopCounterMode

from wavenet_core.bench.training import train_flops
from wavenet_core.model.config import MelConfig, WaveNetConfig
from wavenet_core.model.wavenet import WaveNet
from wavenet_core.training import kernels
from wavenet_core.training.data import sample_batch
from wavenet_core.training.train import TrainSettings, batch_loss, train
from wavenet_core.training.utterance import make_utterance

MEL = MelConfig(n_mels=5, n_fft=64, win_length=64, hop_length=7)
BASE = dict(layers_per_stack=3, stacks=2, residual_channels=8, skip_channels=12)
CONFIGS = {
    "mel": WaveNetConfig(**BASE, mel_channels=5, mel=MEL, mel_mean=-1.0, mel_std=2.0),
    "variants": WaveNetConfig(**BASE, mel_channels=5, mel=MEL, num_speakers=3,
                              speaker_channels=4, kernel_size=3, gate_channels=6,
                              out_bias=True, residual_scale=0.7, dilation_cycle=(1, 3, 2)),
    "no-mel": WaveNetConfig(**BASE),
    "cond-net": WaveNetConfig(**BASE, mel_channels=5, mel=MEL, cond_layers=2),
    "excitation": WaveNetConfig(**BASE, mel_channels=5, mel=MEL, excitation="lpc",
                                lpc_order=4),
}


def _utterances(config, count=3, samples=900, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000
    return [make_utterance((0.3 * np.sin(2 * np.pi * (150 + 50 * i) * t)
                            + 0.05 * rng.standard_normal(samples)).astype(np.float32),
                           i % 3, config, config.receptive_field) for i in range(count)]


def _model(config, seed=0):
    torch.manual_seed(seed)
    model = WaveNet(config).train()
    if model.cond_net is not None:   # a fresh one is the identity: make it do something
        for p in model.cond_net.parameters():
            p.data.normal_(0, 0.2)
    return model


def _gradients(model, batch, bfloat16, fused):
    model.zero_grad(set_to_none=True)
    loss = batch_loss(model, batch, torch.device("cpu"), bfloat16, fused)
    loss.backward()
    return loss.item(), {k: p.grad for k, p in model.named_parameters()}


def _batches(config, seed=1, batch=3, window=17):
    utts = _utterances(config)
    rows = sample_batch(utts, config, batch, window, np.random.default_rng(seed))
    frames = sample_batch(utts, config, batch, window, np.random.default_rng(seed), frames=True)
    return rows, frames


@pytest.mark.parametrize("name", CONFIGS)
def test_fused_step_equals_plain_in_float32(name):
    config = CONFIGS[name]
    model = _model(config)
    rows, frames = _batches(config)
    plain_loss, plain = _gradients(model, rows, False, False)
    fused_loss_, fused = _gradients(model, frames, False, True)
    assert fused_loss_ == pytest.approx(plain_loss, rel=1e-6)
    # the same parameters get gradients (the last layer's residual weights none, in both)
    assert {k for k, g in plain.items() if g is None} == {k for k, g in fused.items() if g is None}
    for key, g in plain.items():
        if g is not None:
            assert (fused[key] - g).abs().max() <= 1e-5 * g.abs().max() + 1e-9, key


@pytest.mark.parametrize("name", CONFIGS)
def test_fused_bfloat16_is_as_close_to_float32_as_autocast(name):
    """bfloat16 gradients of a tiny model are mostly rounding: compared over six seeds,
    the fused step's distance from float32 is the plain (autocast) step's."""
    config = CONFIGS[name]
    flat = lambda grads: torch.cat([g.flatten() for g in grads.values() if g is not None])  # noqa: E731
    errors = {"plain": [], "fused": []}
    for seed in range(6):
        model = _model(config, seed)
        rows, frames = _batches(config, seed=seed + 1)
        exact_loss, exact = _gradients(model, rows, False, False)
        for fused, batch in ((False, rows), (True, frames)):
            loss, grads = _gradients(model, batch, True, fused)
            assert abs(loss - exact_loss) < 2e-3
            errors["fused" if fused else "plain"].append(
                float((flat(grads) - flat(exact)).norm() / flat(exact).norm()))
    assert np.mean(errors["fused"]) <= 1.5 * np.mean(errors["plain"]) + 0.005, errors


def test_frame_windows_give_the_mel_window_rows_bitwise():
    config = CONFIGS["excitation"]
    model = _model(config)
    rows, frames = _batches(config, batch=4, window=60)
    local = model.local_from_frame_window(*(torch.from_numpy(getattr(frames.frames, f))
                                            for f in ("frames", "left", "right", "weight")))
    assert torch.equal(local, torch.from_numpy(rows.local))
    for field in ("inputs", "targets", "speaker", "prediction"):
        assert np.array_equal(getattr(rows, field), getattr(frames, field)), field
    with pytest.raises(ValueError, match="frames"):
        batch_loss(model, rows, torch.device("cpu"), fused=True)


def test_fused_loss_takes_time_major_rows():
    """A batch of one window and the same window twice give the same loss (no mixing of
    windows in the time-major layout)."""
    config = CONFIGS["mel"]
    model = _model(config)
    _, frames = _batches(config, batch=1)
    double = dataclasses.replace(
        frames, inputs=np.repeat(frames.inputs, 2, 0), targets=np.repeat(frames.targets, 2, 0),
        speaker=np.repeat(frames.speaker, 2, 0),
        frames=type(frames.frames)(*(np.repeat(getattr(frames.frames, f), 2, 0)
                                     for f in ("frames", "left", "right", "weight"))))
    one = batch_loss(model, frames, torch.device("cpu"), fused=True).item()
    two = batch_loss(model, double, torch.device("cpu"), fused=True).item()
    assert two == pytest.approx(one, rel=1e-6)


def test_cross_entropy_kernel_matches_torch():
    logits = torch.randn(37, 70) * 3
    bias = torch.randn(70)
    targets = torch.randint(0, 70, (37,))
    grad, grad_sum = torch.empty_like(logits), torch.zeros(70)
    total = kernels.cross_entropy(logits.numpy(), bias.numpy(), targets.numpy(),
                                  np.float32(1 / 37), grad.numpy(), grad_sum.numpy())
    ref = logits.clone().requires_grad_()
    loss = F.cross_entropy(ref + bias, targets)
    loss.backward()
    assert total / 37 == pytest.approx(loss.item(), rel=1e-6)
    torch.testing.assert_close(grad, ref.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grad_sum, ref.grad.sum(0), rtol=1e-5, atol=1e-7)


def test_training_fused_or_plain_writes_the_same_files(tiny_corpus, tmp_path):
    config = WaveNetConfig(layers_per_stack=3, stacks=1, residual_channels=6, skip_channels=8,
                           mel_channels=20, mel=MelConfig(n_mels=20, n_fft=256, win_length=256,
                                                          hop_length=64))
    losses, files = {}, {}
    for fused in (True, False):
        out = tmp_path / str(fused)
        settings = TrainSettings(corpus=str(tiny_corpus), out_dir=str(out), steps=4,
                                 batch_size=2, window=100, valid_windows=2, precision="fp32",
                                 fused=fused)
        train(config, settings, progress=False)
        losses[fused] = [float(line.split('"loss": ')[1].split(",")[0])
                         for line in (out / "metrics.jsonl").read_text().splitlines()]
        files[fused] = {}
        for name in ("model.safetensors", "optimizer.safetensors"):
            with safe_open(str(out / name), "pt") as f:
                files[fused][name] = {k: (f.get_tensor(k).shape, f.get_tensor(k).dtype)
                                      for k in f.keys()}
    assert files[True] == files[False]
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)


def _addmm_inplace(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs):
    return 2 * a_shape[0] * a_shape[1] * b_shape[1]


def _counted(model, batch, fused):
    mapping = {torch.ops.aten.addmm_: _addmm_inplace}   # (the counter knows addmm, not addmm_)
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        batch_loss(model, batch, torch.device("cpu"), False, fused).backward()
    return counter.get_total_flops()


def test_train_flops_count_the_products_of_a_step():
    config = WaveNetConfig(layers_per_stack=3, stacks=2, residual_channels=8, skip_channels=12,
                           gate_channels=6, kernel_size=3)
    model = _model(config)
    rows, frames = _batches(config, batch=2, window=40)
    expected = train_flops(config, 2, 40)
    assert _counted(model, frames, True) == expected
    # the plain step also makes the skips of the receptive-field rows (and their gradients,
    # of zeros) and the last layer's residual (no gradient: nothing reads it)
    lengths = [config.receptive_field - 1 + 40]
    for d in config.dilations:
        lengths.append(lengths[-1] - (config.kernel_size - 1) * d)
    waste = sum(3 * 2 * 2 * (n - 40) * 6 * 12 for n in lengths[1:]) + 2 * 2 * 40 * 6 * 8
    assert _counted(model, rows, False) == expected + waste


def test_train_speed_compares_the_two_steps_on_the_same_windows():
    from wavenet_core.bench.training import compare_recipes

    config = dataclasses.replace(CONFIGS["excitation"], mel=MelConfig(n_mels=5))
    r = compare_recipes(config, batch=2, window=50, rounds=1, steps_per_round=1,
                        bfloat16=False, log=lambda line: None)
    assert r["loss_fused"] == pytest.approx(r["loss_plain"], rel=1e-6)
    assert r["plain"] > 0 and r["fused"] > 0 and r["ratio"] == r["fused"] / r["plain"]
    assert r["flops_per_sample"] == train_flops(config, 2, 50) / 100
