"""A real `wavenet serve` serves a model with a conditioning network (`cond_layers`,
wavenet_core/model/condnet.py): the runner conditions each chunk's frames one by one (the same
values whatever the chunk) and the mel feed holds back the network's lookahead until the
mel ends, so a mel streamed in piece by piece gives bitwise the audio of the mel sent whole;
audio flows before the end once the lookahead has come. Below the server: the runner's
per-chunk conditioning equals the whole mel's conditioned rows in any chunking."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
import torch

from tests.helpers.server import BACKEND, MEL, SMALL, Server
from tests.helpers.ws import ws_audio_before_end, ws_mel_stream, ws_whole_mel
from wavenet_core import MelConfig, WaveNet, WaveNetConfig, save_checkpoint
from wavenet_core.audio.mel import mel_window

HOP, WIDTH = MEL["hop_length"], MEL["n_mels"]
CONFIG = WaveNetConfig(**SMALL, mel_channels=WIDTH, mel=MelConfig(**MEL), mel_mean=-5.0,
                       mel_std=2.0, cond_layers=2)


def cond_model(seed: int = 3) -> WaveNet:
    """A cond model whose network is not the identity (its zero output convs drawn)."""
    torch.manual_seed(seed)
    model = WaveNet(CONFIG).eval()
    with torch.no_grad():
        for block in model.cond_net.blocks:
            block.out.weight.normal_(0, 0.3)
            block.out.bias.normal_(0, 0.3)
    return model


def random_mel(frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(-5, 2, (frames, WIDTH)).astype(np.float32)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("condnet")
    save_checkpoint(folder / "cond.safetensors", cond_model())
    srv = Server.ready(folder, {"WAVENET_BACKEND": BACKEND, "WAVENET_MAX_STREAMS": "4"},
                       folder / "server.log")
    try:
        yield srv
    finally:
        srv.stop()


def test_the_cond_model_is_served(server):
    models = {m["name"]: m for m in httpx.get(server.url + "/v1/models").json()["data"]}
    assert models["cond"]["status"] == "ready", models


@pytest.mark.skipif(BACKEND != "cpu", reason="bitwise chunk invariance is the cpu backend's")
def test_streamed_mel_gives_the_same_audio_as_the_whole_mel(server):
    mel = random_mel(23, seed=3)
    start = {"model": "cond", "seed": 11, "temperature": 1.0}
    whole = ws_whole_mel(server.ws_url, start, mel, HOP)
    for sizes in ([1, 2, 7, 1, 12], [3, 3, 17], [23]):
        pieces, at = [], 0
        for size in sizes:
            pieces.append(mel[at:at + size].astype("<f4").tobytes())
            at += size
        streamed = asyncio.run(ws_mel_stream(server.ws_url, start,
                                             pieces + [{"type": "end"}], pause=0.02))
        assert streamed["close_code"] == 1000, streamed
        assert streamed["audio"] == whole["audio"], sizes
    assert len(set(np.frombuffer(whole["audio"], "<i2").tolist())) > 10


def test_audio_waits_for_the_networks_lookahead(server):
    audio, done = ws_audio_before_end(server.ws_url, "cond", random_mel(5).tobytes(),
                                      2 * HOP)   # 5 frames - 2 held back: frames 0, 1 final
    assert len(audio) == 2 * 5 * HOP and done["status"] == "done" and done["samples"] == 5 * HOP


def test_the_sessions_chunks_give_the_whole_mels_conditioned_rows():
    from wavenet_core.generation import TorchBackend
    from wavenet_core.generation.conditioning import WholeMel
    from wavenet_core.generation.session import GenerationSession

    model = cond_model()
    session = GenerationSession(TorchBackend(model), 1)
    mel = random_mel(11, seed=4)
    whole = model.cond_net.condition_mel(mel)
    assert np.abs(whole - mel).max() > 0.1                   # not the identity
    want = mel_window(whole, HOP, 0, len(mel) * HOP)
    rng = np.random.default_rng(0)
    for _ in range(5):
        session.open(0, mel=WholeMel(mel, CONFIG))
        start, got = 0, []
        while start < len(want):
            k = min(int(rng.integers(1, 3 * HOP)), len(want) - start)
            rows = session.conditioning(0, k)
            got.append(rows)
            session.generate([0], k, [rows])
            start += k
        session.free(0)
        got = np.concatenate(got)
        last = (len(mel) - 1) * HOP                         # before the last frame: bitwise
        np.testing.assert_array_equal(got[:last], want[:last])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_a_runner_without_the_network_refuses_a_cond_config():
    from server.engine.runner import Runner

    class Bare:                                      # a backend that exposes no model
        def new_state(self, n):
            return None

    with pytest.raises(ValueError, match="cond_layers=2"):
        Runner("cond", Bare(), CONFIG, 2)
