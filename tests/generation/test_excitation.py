"""docs/architecture.md section 3 invariants for excitation models (docs/excitation.md) on
the torch reference backend and the naive generator: step = full forward, priming = stepping,
batch invariance, chunked = whole, a streamed mel = the whole mel (the last two on the
compiled cpu and triton backends too; their own tests: tests/generation/cpu/
test_cpu_excitation.py, tests/generation/triton/test_triton_excitation.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.models import excitation_configs, random_model
from tests.helpers.tiny_models import excitation_inputs
from wavenet_core.audio.lpc import lpc_window
from wavenet_core.generation import TorchBackend, naive_generate
from wavenet_core.generation.conditioning import StreamedMel, WholeMel, local_from_mel
from wavenet_core.generation.registry import make_backend
from wavenet_core.generation.session import synthesize
from wavenet_core.model.config import MelConfig, WaveNetConfig

HYPO = settings(max_examples=20, deadline=None)
SMALL = WaveNetConfig(layers_per_stack=3, stacks=1, residual_channels=6, skip_channels=10,
                      mel_channels=4, mel=MelConfig(n_mels=4, hop_length=8), mel_mean=-3.0,
                      excitation="lpc", lpc_order=6)


def teacher_forced(backend, state, slot, inputs, steps, first=0):
    """Step samples first .. first+steps-1 of `inputs` through `slot` -> logits [steps, K]."""
    local = inputs["local"]
    return torch.cat([backend.step_logits(state, [slot], inputs["x"][:, t],
                                          None if local is None else local[:, :, t],
                                          lpc=inputs["lpc"][:, t])
                      for t in range(first, first + steps)])


@HYPO
@given(config=excitation_configs(), extra=st.integers(1, 20))
def test_teacher_forced_steps_equal_full_forward(config, extra):
    model = random_model(config)
    field = config.receptive_field
    length = 2 * field + extra
    inp = excitation_inputs(config, length)
    with torch.no_grad():
        full = model(inp["codes"], inp["local"], inp["speaker"],
                     prediction=inp["prediction"])[0].T
    backend = TorchBackend(model)
    state = backend.new_state(3)
    backend.open_slot(state, 1, speaker=0 if inp["speaker"] is None else int(inp["speaker"]))
    fast = teacher_forced(backend, state, 1, inp, length)
    torch.testing.assert_close(fast[field - 1:], full, rtol=0, atol=1e-4)


@HYPO
@given(config=excitation_configs(), history_len=st.integers(1, 40))
def test_priming_equals_stepping_the_history(config, history_len):
    backend = TorchBackend(random_model(config))
    length = history_len + 5
    inp = excitation_inputs(config, length)
    spk = 0 if inp["speaker"] is None else int(inp["speaker"])
    state = backend.new_state(2)
    backend.open_slot(state, 0, speaker=spk)
    stepped = teacher_forced(backend, state, 0, inp, length)
    local = inp["local"]
    backend.open_slot(state, 1, history=inp["x"][0, :history_len].numpy(), speaker=spk,
                      history_local=None if local is None
                      else local[0, :, :history_len - 1].T.numpy(),
                      history_lpc=inp["lpc"][0, :history_len - 1].numpy())
    assert float(state.next_value[1]) == float(inp["x"][0, history_len - 1])
    primed = teacher_forced(backend, state, 1, inp, length - history_len + 1, history_len - 1)
    torch.testing.assert_close(primed, stepped[history_len - 1:], rtol=0, atol=1e-5)


def stream_rows(config: WaveNetConfig, steps: int, seed: int):
    """A random log-mel and its per-sample rows and LPC rows for `steps` samples."""
    hop = config.mel.hop_length
    mel = np.random.default_rng(seed).normal(-4, 2, (steps // hop + 2, config.mel_channels))
    mel = mel.astype(np.float32)
    return (mel, local_from_mel(mel, config)[:steps], lpc_window(mel, config, 0, steps))


@settings(max_examples=8, deadline=None)
@given(config=excitation_configs(max_layers=3), temperature=st.sampled_from([0.0, 0.7, 1.0]))
def test_queue_generation_equals_naive_reference(config, temperature):
    if config.upsample_scales:           # the rows come from the mel by interpolation here
        config = dataclasses.replace(config, upsample_scales=(),
                                     mel=MelConfig(n_mels=config.mel_channels))
    model = random_model(config)
    steps = config.receptive_field + 15
    _, local, lpc = stream_rows(config, steps, 0)
    speaker = config.num_speakers - 1 if config.global_conditioning else 0
    expected = naive_generate(model, steps, seed=11, temperature=temperature, speaker=speaker,
                              local=local, lpc=lpc)
    backend = TorchBackend(model)
    state = backend.new_state(2)
    backend.open_slot(state, 1, seed=11, temperature=temperature, speaker=speaker)
    got = np.concatenate([backend.generate(state, [1], 7, local[None, :7], lpc[None, :7])[0],
                          backend.generate(state, [1], steps - 7, local[None, 7:],
                                           lpc[None, 7:])[0]])
    np.testing.assert_array_equal(got, expected)
    assert temperature == 0 or len(set(got.tolist())) > 3


@settings(max_examples=6, deadline=None)
@given(config=excitation_configs(max_layers=3))
def test_a_stream_alone_equals_it_among_fifteen_bitwise(config):
    if config.upsample_scales:
        config = dataclasses.replace(config, upsample_scales=(),
                                     mel=MelConfig(n_mels=config.mel_channels))
    backend = TorchBackend(random_model(config))
    steps = 60
    rows = [stream_rows(config, steps, seed) for seed in range(16)]
    state = backend.new_state(16)
    backend.open_slot(state, 3, seed=5)
    alone = backend.generate(state, [3], steps, rows[9][1][None], rows[9][2][None])[0]
    state = backend.new_state(16)
    order = [(slot * 7) % 16 for slot in range(16)]        # stream i in slot order[i]
    for i, slot in enumerate(order):
        backend.open_slot(state, slot, seed=5 if i == 9 else i + 100)
    together = backend.generate(state, order, steps, np.stack([r[1] for r in rows]),
                                np.stack([r[2] for r in rows]))
    np.testing.assert_array_equal(together[9], alone)


def backend_names() -> list[str]:
    """torch, and the compiled cpu and triton (interpreted without CUDA) where they run."""
    import importlib.util

    from tests.helpers.server import cpu_backend_available

    return (["torch"] + (["cpu"] if cpu_backend_available() else [])
            + (["triton"] if importlib.util.find_spec("triton") else []))


@pytest.mark.parametrize("name", backend_names())
def test_offline_synthesis_does_not_depend_on_the_chunking(name):
    backend = make_backend(random_model(SMALL, seed=2), name, "cpu", "fp32")
    mel = np.random.default_rng(1).normal(-4, 2, (9, 4)).astype(np.float32)
    whole = synthesize(backend, len(mel) * 8, seed=3, mel=mel, chunk=4000)
    for chunk in (1, 7, 29):
        np.testing.assert_array_equal(
            synthesize(backend, len(mel) * 8, seed=3, mel=mel, chunk=chunk), whole)
    assert np.abs(whole).max() > 0.01 and len(np.unique(whole)) > 10
    with pytest.raises(ValueError, match="predicts from the mel"):
        synthesize(backend, len(mel) * 8, local=local_from_mel(mel, SMALL))


@pytest.mark.parametrize("name", backend_names())
def test_the_runner_streams_equal_one_shot_synthesis_and_a_streamed_mel_equals_whole(name):
    from server.engine.runner import Job, Runner
    from server.engine.scheduler import Plan, Stream
    from tests.helpers.runner import run_in_chunks
    from wavenet_core.audio.wav import float_to_pcm16

    model = random_model(SMALL, seed=2)
    mel = np.random.default_rng(1).normal(-4, 2, (9, 4)).astype(np.float32)
    total = len(mel) * 8
    expected = float_to_pcm16(synthesize(make_backend(model, name, "cpu", "fp32"), total,
                                         seed=3, mel=mel)).tobytes()
    runner = Runner("m", make_backend(model, name, "cpu", "fp32"), SMALL, 3)
    stream = Stream("s", total, Job(total, seed=3, mel=WholeMel(mel, SMALL)), slot=2)
    assert b"".join(p[0] for p in run_in_chunks(runner, [stream], (13, 27, 32))) == expected
    # frame by frame: each chunk makes only the samples the frames so far make final
    feed = StreamedMel(SMALL, 64)
    runner = Runner("m", make_backend(model, name, "cpu", "fp32"), SMALL, 3)
    stream = Stream("s", total, Job(total, seed=3, mel=feed), slot=1)
    plan, audio = Plan(open=[stream], running=[stream], chunk_samples=0), b""
    for frames in (2, 3, 3, 1):
        feed.append(mel[feed.count:feed.count + frames])
        if feed.count == len(mel):
            feed.end()
        plan.chunk_samples = feed.ready_samples - stream.produced
        audio += runner.execute_sync(plan)[0]
        stream.produced += plan.chunk_samples
        plan = Plan(running=[stream], chunk_samples=0)
    runner.close()
    assert audio == expected
