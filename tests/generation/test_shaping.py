"""Voicing-shaped sampling (docs/voicing.md): the sampler's tail cut and temperature, the
config fields, the per-sample rows, the torch reference against the naive generator, and
the session's invariants (chunking, a streamed mel = the whole mel, batch invariance) on
the torch, compiled cpu and triton backends; an explicit temperature turns it off."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.generation.test_excitation import backend_names
from tests.helpers.models import random_model, shaping_configs
from tests.helpers.voicing import speech_like_mel
from wavenet_core.audio.frame_rows import frame_of_sample
from wavenet_core.generation import TorchBackend, naive_generate
from wavenet_core.generation.capabilities import unsupported
from wavenet_core.generation.conditioning import StreamedMel, WholeMel, local_from_mel
from wavenet_core.generation.registry import make_backend
from wavenet_core.generation.sampling import sample_codes
from wavenet_core.generation.session import GenerationSession, synthesize
from wavenet_core.generation.shaping import plain_rows, shaping_window
from wavenet_core.model.config import MelConfig, WaveNetConfig
from wavenet_core.model.recipe import FeatureRecipe

SHAPED = WaveNetConfig(layers_per_stack=3, stacks=1, residual_channels=6, skip_channels=10,
                       classes=64, mel_channels=8, mel=MelConfig(n_mels=8, hop_length=8),
                       mel_mean=-3.0, voiced_temperature=0.5, voiced_floor=0.05)


def random_rows(n: int, steps: int, seed: int) -> np.ndarray:
    """Shaping rows [n, steps, 2]: a mix of plain (T, 0) and shaped (T', floor) samples."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((n, steps, 2), np.float32)
    rows[..., 0] = rng.choice([0.0, 0.4, 1.0, 1.3], (n, steps))
    rows[..., 1] = rng.choice([0.0, 0.0, 0.02, 0.1], (n, steps))
    return rows


# -- the sampler ------------------------------------------------------------------------

def test_the_floor_zeroes_the_tail_and_the_draw_renormalises():
    rng = np.random.default_rng(0)
    logits = torch.tensor(rng.normal(0, 2, (6, 17)), dtype=torch.float32)
    grid = 4000
    u = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid
    for t, floor in ((1.0, 0.05), (0.5, 0.02), (1.3, 0.1)):
        p = torch.softmax(logits.double() / t, 1)
        kept = torch.where(p < floor, 0.0, p)
        kept = kept / kept.sum(1, keepdim=True)
        for row in range(len(logits)):
            codes = sample_codes(logits[row].expand(grid, -1), torch.full((grid,), t), u,
                                 torch.full((grid,), floor))
            counts = torch.bincount(codes, minlength=17).double() / grid
            assert (p[row, codes] >= floor).all()                        # the tail is gone
            assert torch.allclose(counts, kept[row], atol=2.0 / grid)    # the rest rescaled
            assert int((kept[row] > 0).sum()) < 17                       # it did cut


def test_a_zero_floor_is_bitwise_no_floor():
    rng = np.random.default_rng(1)
    logits = torch.tensor(rng.normal(0, 3, (500, 256)), dtype=torch.float32)
    t = torch.tensor(rng.choice([0.0, 0.5, 1.0], 500), dtype=torch.float32)
    u = torch.rand(500, generator=torch.Generator().manual_seed(2))
    assert torch.equal(sample_codes(logits, t, u, torch.zeros(500)), sample_codes(logits, t, u))


# -- config and rows ---------------------------------------------------------------------

def test_config_round_trip_and_files_without_it_unchanged():
    assert WaveNetConfig.from_json(SHAPED.to_json()) == SHAPED
    plain = dataclasses.replace(SHAPED, voiced_temperature=1.0, voiced_floor=0.0)
    assert "voiced_temperature" not in plain.to_dict() and not plain.voicing_shaping
    assert SHAPED.to_dict()["voiced_floor"] == 0.05 and SHAPED.voicing_shaping
    assert unsupported(SHAPED, "cuda-graph") == ["voiced_temperature=0.5", "voiced_floor=0.05"]
    assert unsupported(SHAPED, "cpu") == unsupported(SHAPED, "triton") == []


@pytest.mark.parametrize("change, match", [
    (dict(voiced_floor=1.0), "voiced_floor"), (dict(voiced_temperature=-0.1), ">= 0"),
    (dict(voiced_temperature=float("inf")), "finite"),
    (dict(mel_channels=0), "mel-conditioned"), (dict(mel_channels=5), "mel_channels =="),
    (dict(input_kind="scalar", output="gaussian"), "softmax"),
    (dict(features=FeatureRecipe(kind="r9y9")), "natural-log mel")])
def test_config_refuses_what_it_cannot_shape(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(SHAPED, **change)


def test_voiced_frames_get_the_models_temperature_and_floor_by_the_nearest_centre():
    mel, voiced = speech_like_mel(SHAPED, 30)
    hop = SHAPED.mel.hop_length
    rows = shaping_window(mel, SHAPED, 0, 30 * hop)
    frame = frame_of_sample(np.arange(30 * hop), hop, 29)
    expected = np.where(voiced[frame][:, None], [[0.5, 0.05]], [[1.0, 0.0]]).astype(np.float32)
    np.testing.assert_array_equal(rows, expected)
    assert 0.2 < voiced.mean() < 0.8


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(1, 60), min_size=1, max_size=6), start=st.integers(0, 40))
def test_chunks_and_a_streamed_mel_give_the_whole_rows_bitwise(cuts, start):
    mel, _ = speech_like_mel(SHAPED, 40, seed=3)
    hop = SHAPED.mel.hop_length
    total = 39 * hop - start              # every sample final before the mel ends
    whole = shaping_window(mel, SHAPED, start, total)
    cache, parts, at = {}, [], start
    for k in itertools.cycle(cuts):
        k = min(k, start + total - at)
        if k == 0:
            break
        # the frames a stream has when these samples are ready: one frame of lookahead
        ready = mel[:min(len(mel), (at + k - 1) // hop + 2)]
        parts.append(shaping_window(ready, SHAPED, at, k, cache))
        at += k
    np.testing.assert_array_equal(np.concatenate(parts), whole)


# -- the torch reference -----------------------------------------------------------------

def _plain_upsampler(config: WaveNetConfig) -> WaveNetConfig:
    """Rows from the mel by interpolation (the naive generator takes rows)."""
    if not config.upsample_scales:
        return config
    return dataclasses.replace(config, upsample_scales=(), mel_mean=-3.0,
                               mel=dataclasses.replace(config.mel, hop_length=8))


@settings(max_examples=10, deadline=None)
@given(config=shaping_configs())
def test_queue_generation_equals_the_naive_reference(config):
    config = _plain_upsampler(config)
    model = random_model(config)
    steps = config.receptive_field + 12
    mel, _ = speech_like_mel(config, steps // config.mel.hop_length + 2)
    local = local_from_mel(mel, config)[:steps]
    lpc = None
    if config.lpc_excitation:
        from wavenet_core.audio.lpc import lpc_window

        lpc = lpc_window(mel, config, 0, steps)
    rows = random_rows(1, steps, 4)[0]
    expected = naive_generate(model, steps, seed=9, local=local, lpc=lpc, shaping=rows)
    backend = TorchBackend(model)
    state = backend.new_state(2)
    backend.open_slot(state, 1, seed=9)
    got = np.concatenate([
        backend.generate(state, [1], k, local[None, a:a + k],
                         None if lpc is None else lpc[None, a:a + k], rows[None, a:a + k])[0]
        for a, k in ((0, 5), (5, steps - 5))])
    np.testing.assert_array_equal(got, expected)


def test_shaping_changes_what_is_drawn_and_plain_rows_change_nothing():
    model = random_model(SHAPED, seed=1)
    backend = TorchBackend(model)
    steps = 200
    mel, _ = speech_like_mel(SHAPED, steps // 8 + 2)
    local = local_from_mel(mel, SHAPED)[None, :steps]

    def run(rows):
        state = backend.new_state(1)
        backend.open_slot(state, 0, seed=4, temperature=0.8)
        return backend.generate(state, [0], steps, local, shaping=rows)[0]

    plain = run(None)
    np.testing.assert_array_equal(run(plain_rows(0.8, steps)[None]), plain)
    assert not np.array_equal(run(shaping_window(mel, SHAPED, 0, steps)[None]), plain)


# -- the session, on every backend --------------------------------------------------------

def _session_audio(backend, config, mel, chunks, seed=3, temperature=None, streamed=False):
    """One stream through a GenerationSession, chunk by chunk (or frame by frame)."""
    session = GenerationSession(backend, 2)
    hop = config.mel.hop_length
    if not streamed:
        source = WholeMel(mel, config)
        session.open(1, seed=seed, temperature=temperature, mel=source)
        total, parts, done = source.num_samples, [], 0
        for k in itertools.cycle(chunks):
            k = min(k, total - done)
            if k == 0:
                break
            parts.append(session.generate([1], k, [session.conditioning(1, k)])[0])
            done += k
        return np.concatenate(parts)
    feed = StreamedMel(config, len(mel))
    session.open(1, seed=seed, temperature=temperature, mel=feed)
    parts, done, sent = [], 0, 0
    for frames in itertools.cycle(chunks):
        if sent == len(mel):
            break
        feed.append(mel[sent:sent + frames])
        sent = feed.count
        if sent == len(mel):
            feed.end()
        k = feed.ready_samples - done
        if k:
            parts.append(session.generate([1], k, [session.conditioning(1, k)])[0])
            done += k
    assert done == len(mel) * hop
    return np.concatenate(parts)


@pytest.mark.parametrize("name", backend_names())
@settings(max_examples=4, deadline=None)
@given(config=shaping_configs(max_layers=2), chunks=st.lists(st.integers(1, 40), min_size=1,
                                                             max_size=4))
def test_a_shaped_stream_is_the_same_for_any_chunking_and_a_streamed_mel(name, config, chunks):
    model = random_model(config, seed=2)
    mel, voiced = speech_like_mel(config, 6 if config.mel.hop_length > 8 else 10)
    backend = make_backend(model, name, "cpu", "fp32")
    whole = _session_audio(backend, config, mel, [4000])
    np.testing.assert_array_equal(_session_audio(backend, config, mel, chunks), whole)
    np.testing.assert_array_equal(
        _session_audio(backend, config, mel, [1 + c % 3 for c in chunks], streamed=True), whole)


@pytest.mark.parametrize("name", backend_names())
def test_an_explicit_temperature_samples_unshaped_and_the_default_shaped(name):
    model = random_model(SHAPED, seed=5)
    plain = random_model(dataclasses.replace(SHAPED, voiced_temperature=1.0, voiced_floor=0.0),
                         seed=5)
    mel, _ = speech_like_mel(SHAPED, 25, seed=1)
    n = 25 * 8
    shaped = make_backend(model, name, "cpu", "fp32")
    unshaped = make_backend(plain, name, "cpu", "fp32")
    for t in (1.0, 0.7):
        np.testing.assert_array_equal(synthesize(shaped, n, seed=2, temperature=t, mel=mel),
                                      synthesize(unshaped, n, seed=2, temperature=t, mel=mel))
    default = synthesize(shaped, n, seed=2, mel=mel)
    assert not np.array_equal(default, synthesize(unshaped, n, seed=2, mel=mel))
    # the default is the model's rows from the mel, through the backend
    state = shaped.new_state(1)
    shaped.open_slot(state, 0, seed=2)
    codes = shaped.generate(state, [0], n, local_from_mel(mel, SHAPED)[None, :n],
                            shaping=shaping_window(mel, SHAPED, 0, n)[None])
    from wavenet_core.generation.sampling import codes_to_audio

    np.testing.assert_array_equal(default, codes_to_audio(codes[0], SHAPED))
    with pytest.raises(ValueError, match="reads the mel"):
        synthesize(shaped, n, local=local_from_mel(mel, SHAPED))


@settings(max_examples=6, deadline=None)
@given(config=shaping_configs(max_layers=2))
def test_a_shaped_stream_alone_equals_it_among_others_with_unshaped_ones(config):
    """Torch; the cpu and triton backends: their own tests (bitwise there too)."""
    backend = TorchBackend(random_model(config))
    hop = config.mel.hop_length
    mels = [speech_like_mel(config, 8, seed=i)[0] for i in range(6)]
    steps = 7 * hop
    session = GenerationSession(backend, 1)
    session.open(0, seed=5, mel=WholeMel(mels[2], config))
    alone = session.generate([0], steps, [session.conditioning(0, steps)])[0]
    session = GenerationSession(backend, 6)
    order = [4, 0, 5, 2, 1, 3]                       # stream i in slot order[i]
    for i, slot in enumerate(order):
        session.open(slot, seed=5 if i == 2 else i + 50, mel=WholeMel(mels[i], config),
                     temperature=None if i % 2 == 0 else 0.8)
    together = session.generate(order, steps, [session.conditioning(s, steps) for s in order])
    np.testing.assert_array_equal(together[2], alone)


def test_the_runner_samples_shaped_unless_the_request_names_a_temperature():
    from server.engine.runner import Job, Runner
    from server.engine.scheduler import Stream
    from server.wire.schemas import SynthesisRequest
    from tests.helpers.runner import run_in_chunks
    from wavenet_core.audio.wav import float_to_pcm16

    assert SynthesisRequest(num_samples=8).temperature is None      # omitted: the default
    model = random_model(SHAPED, seed=2)
    mel, _ = speech_like_mel(SHAPED, 12, seed=4)
    total = 12 * 8
    outputs = []
    for t in (None, 1.0):
        expected = float_to_pcm16(synthesize(TorchBackend(model), total, seed=3, temperature=t,
                                             mel=mel)).tobytes()
        runner = Runner("m", TorchBackend(model), SHAPED, 3)
        job = Job(total, seed=3, temperature=t, mel=WholeMel(mel, SHAPED))
        stream = Stream("s", total, job, slot=2)
        got = b"".join(p[0] for p in run_in_chunks(runner, [stream], (13, 27, 56)))
        assert got == expected
        outputs.append(got)
    assert outputs[0] != outputs[1]
