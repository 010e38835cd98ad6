"""The conditioning network over mel frames (`cond_layers`, wavenet_core/model/condnet.py): the
identity when freshly added, exactly `cond_layers` frames of lookahead, one edge rule for
whole mels and training windows, a checkpoint round trip, and generation through the torch
and cpu backends that equals the model's teacher-forced forward on the conditioned mel."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.models import random_model
from wavenet_core.audio.mel import mel_window
from wavenet_core.generation import TorchBackend
from wavenet_core.generation.conditioning import local_from_mel
from wavenet_core.generation.mel_frames import MelFrames
from wavenet_core.model.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from wavenet_core.model.config import MelConfig, WaveNetConfig
from wavenet_core.model.wavenet import WaveNet
from wavenet_core.training.data import fixed_batches
from wavenet_core.training.train import batch_loss
from wavenet_core.training.utterance import make_utterance

HYPO = settings(max_examples=20, deadline=None)
HOP = 4
BASE = WaveNetConfig(layers_per_stack=3, stacks=2, dilation_cycle=(1, 3, 2),
                     residual_channels=10, skip_channels=12, mel_channels=5,
                     mel_mean=-2.0, mel_std=1.5, mel=MelConfig(n_mels=5, hop_length=HOP))
COND = dataclasses.replace(BASE, cond_layers=2)


def _mel(frames: int, seed: int, channels: int = 5) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((frames, channels)) * 1.5 - 2.0) \
        .astype(np.float32)


def trained(model: WaveNet, seed: int = 5) -> WaveNet:
    """`model` with its cond net's zero-initialised output convs drawn at random (as if
    trained), so the network is no longer the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in model.cond_net.blocks:
            block.out.weight.copy_(torch.randn(block.out.weight.shape, generator=g) * 0.5)
            block.out.bias.copy_(torch.randn(block.out.bias.shape, generator=g) * 0.5)
    return model


def test_config_defaults_validation_and_json():
    assert WaveNetConfig().cond_layers == 0 and WaveNetConfig().cond_kernel == 3
    assert "cond_layers" not in BASE.to_dict() and "cond_kernel" not in BASE.to_dict()
    assert WaveNetConfig.from_json(COND.to_json()) == COND
    assert COND.cond_lookahead == 2 and COND.cond_left_context == 2
    assert WaveNet(BASE).cond_net is None
    with pytest.raises(ValueError, match="mel-conditioned"):
        WaveNetConfig(cond_layers=1)
    with pytest.raises(ValueError, match="cond_kernel"):
        dataclasses.replace(COND, cond_kernel=1)
    with pytest.raises(ValueError, match="cond_layers"):
        dataclasses.replace(COND, cond_layers=-1)


@HYPO
@given(layers=st.integers(1, 3), kernel=st.integers(2, 4), frames=st.integers(4, 9))
def test_a_fresh_network_is_exactly_the_identity(layers, kernel, frames):
    config = dataclasses.replace(BASE, cond_layers=layers, cond_kernel=kernel)
    model = random_model(config)                       # zero output convs stay zero
    plain = WaveNet(BASE).eval()
    missing, _ = plain.load_state_dict(model.state_dict(), strict=False)
    mel = _mel(frames, 0)
    assert np.array_equal(model.cond_net.condition_mel(mel), mel)
    local = local_from_mel(mel, config, None, model.cond_net)
    assert np.array_equal(local, local_from_mel(mel, BASE))
    codes = torch.randint(0, config.classes, (1, len(local)))
    rows = torch.from_numpy(local.T[None].copy())
    with torch.no_grad():
        assert torch.equal(model(codes, rows), plain(codes, rows))


def test_training_windows_of_a_fresh_network_give_the_plain_loss():
    model = random_model(COND)
    plain = WaveNet(BASE).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    audio = np.random.default_rng(1).normal(0, 0.1, 900).astype(np.float32)
    field = COND.receptive_field
    cond_batch = fixed_batches([make_utterance(audio, 0, COND, field)], COND, 2, 100)[0]
    plain_batch = fixed_batches([make_utterance(audio, 0, BASE, field)], BASE, 2, 100)[0]
    assert cond_batch.local is None and cond_batch.frames is not None
    cpu = torch.device("cpu")
    with torch.no_grad():
        assert float(batch_loss(model, cond_batch, cpu)) == float(batch_loss(plain, plain_batch,
                                                                              cpu))
    model.train()
    batch_loss(model, cond_batch, cpu).backward()   # the zero convs get a gradient
    assert all(b.out.weight.grad.abs().max() > 0 for b in model.cond_net.blocks)


@HYPO
@given(layers=st.integers(1, 3), kernel=st.integers(2, 4), frames=st.integers(12, 20),
       data=st.data())
def test_lookahead_is_exactly_cond_layers_frames(layers, kernel, frames, data):
    config = dataclasses.replace(BASE, cond_layers=layers, cond_kernel=kernel)
    net = trained(random_model(config)).cond_net
    ahead, behind = config.cond_lookahead, config.cond_left_context
    assert (net.lookahead, net.left_context) == (ahead, behind)
    f = data.draw(st.integers(behind + 1, frames - ahead - 2))
    mel = _mel(frames, 1)
    base = net.condition_mel(mel)

    def changed_at(j):
        other = mel.copy()
        other[j] += 3.0
        return not np.array_equal(net.condition_mel(other)[f], base[f])

    assert changed_at(f + ahead) and not changed_at(f + ahead + 1)
    assert changed_at(f - behind) and not changed_at(f - behind - 1)


def test_edges_repeat_the_first_and_last_frame():
    net = trained(random_model(COND)).cond_net
    mel = _mel(7, 2)
    extended = np.concatenate([mel[:1]] * 2 + [mel] + [mel[-1:]] * 2)
    with torch.no_grad():
        direct = net(torch.from_numpy(extended[None]))[0].numpy()
    np.testing.assert_allclose(net.condition_mel(mel), direct, rtol=0, atol=1e-5)
    assert net.condition_mel(mel[:1]).shape == (1, 5)          # a one-frame mel works too


def test_training_windows_give_the_whole_mels_conditioned_rows():
    model = trained(random_model(COND))
    audio = np.random.default_rng(3).normal(0, 0.1, 700).astype(np.float32)
    field = COND.receptive_field
    utt = make_utterance(audio, 0, COND, field)
    whole = model.cond_net.condition_mel(utt.mel)
    assert np.abs(whole - utt.mel).max() > 0.1
    length = 50
    batches = fixed_batches([utt], COND, 3, length)
    starts = range(0, len(utt.codes) - field - length + 1, length)
    got = []
    with torch.no_grad():
        for b in batches:
            fw = b.frames
            got.append(model.local_from_frame_window(
                *(torch.from_numpy(getattr(fw, n)) for n in ("frames", "left", "right",
                                                             "weight"))).numpy())
    got = np.concatenate(got)
    want = np.stack([mel_window(whole, HOP, s + 1, field - 1 + length).T for s in starts])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_local_from_mel_refuses_a_cond_model_without_its_network():
    with pytest.raises(ValueError, match="cond_layers=2"):
        local_from_mel(_mel(4, 0), COND)


def test_checkpoint_round_trip(tmp_path):
    model = trained(random_model(COND))
    save_checkpoint(tmp_path / "c.safetensors", model)
    meta = json.loads(read_metadata(tmp_path / "c.safetensors")["config"])
    assert meta["cond_layers"] == 2 and meta["cond_kernel"] == 3
    back = load_checkpoint(tmp_path / "c.safetensors")
    assert back.config == COND
    for name, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[name], value), name
    assert {n for n in back.state_dict() if n.startswith("cond_net.")} == {
        f"cond_net.blocks.{i}.{conv}.{p}" for i in range(2) for conv in ("conv", "out")
        for p in ("weight", "bias")}
    mel = _mel(6, 4)
    np.testing.assert_array_equal(back.cond_net.condition_mel(mel),
                                  model.cond_net.condition_mel(mel))
    # a file without the option (config JSON without the fields) loads as before
    plain = random_model(BASE)
    save_checkpoint(tmp_path / "p.safetensors", plain)
    assert "cond_layers" not in read_metadata(tmp_path / "p.safetensors")["config"]
    assert load_checkpoint(tmp_path / "p.safetensors").cond_net is None


def _teacher_forced_reference(model, mel, codes):
    """The model's forward on the conditioned mel's rows: logits [steps - R + 1, classes]."""
    local = local_from_mel(mel, model.config, None, model.cond_net)[:codes.shape[1]]
    with torch.no_grad():
        return model(torch.from_numpy(codes), torch.from_numpy(local.T[None].copy()))[0].T


def test_torch_backend_on_conditioned_rows_equals_the_forward():
    model = trained(random_model(COND))
    mel = _mel(30, 5)
    steps = 100
    codes = np.random.default_rng(0).integers(0, COND.classes, (1, steps))
    full = _teacher_forced_reference(model, mel, codes)
    local = torch.from_numpy(local_from_mel(mel, COND, None, model.cond_net)[:steps].T[None]
                             .copy())
    backend = TorchBackend(model)
    state = backend.new_state(2)
    backend.open_slot(state, 1)
    out = torch.cat([backend.step_logits(state, [1], torch.from_numpy(codes[:, t]),
                                         local[:, :, t]) for t in range(steps)])
    field = COND.receptive_field
    torch.testing.assert_close(out[field - 1:], full, rtol=0, atol=1e-4)


def test_cpu_backend_on_conditioned_frames_equals_the_forward():
    cpu_backend = pytest.importorskip("wavenet_core.generation.cpu.backend")
    model = trained(random_model(COND))
    mel = _mel(30, 6)
    steps = 100
    codes = np.random.default_rng(1).integers(0, COND.classes, (1, steps))
    full = _teacher_forced_reference(model, mel, codes).numpy()
    backend = cpu_backend.CpuBackend(model, threads=1, precision="fp32")
    frames = MelFrames.window(model.cond_net.condition_mel(mel), HOP, 0, steps)
    state = backend.new_state(1)
    backend.open_slot(state, 0)
    out = backend.teacher_force(state, [0], codes, frames)[0]
    field = COND.receptive_field
    np.testing.assert_allclose(out[field - 1:], full, rtol=0, atol=1e-4)


def test_precision_cost_refuses_a_cond_model():
    precision_cost = pytest.importorskip("wavenet_core.bench.precision_cost")
    with pytest.raises(ValueError, match="cond_layers=2"):
        precision_cost.precision_costs(random_model(COND), [])
