"""A mel streamed in over WebSocket (docs/architecture.md section 4) behaves through Ray
Serve's proxy as on the single-process server: the same bytes for the same seed, and a bad
frame ends that stream with 1007. Its own cluster: two replicas of one mel model."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.helpers.server import MEL, SMALL
from tests.helpers.ws import ws_mel_stream
from tests.ray.conftest import running_cluster

pytestmark = pytest.mark.timeout(600)


def _mel_model(folder):
    import torch

    from wavenet_core import MelConfig, WaveNet, WaveNetConfig, save_checkpoint

    torch.manual_seed(99)
    save_checkpoint(folder / "mel.safetensors",
                    WaveNet(WaveNetConfig(**SMALL, mel_channels=MEL["n_mels"],
                                          mel=MelConfig(**MEL))))


@pytest.fixture(scope="module")
def mel_cluster(tmp_path_factory):
    yield from running_cluster(tmp_path_factory, _mel_model)


def test_a_streamed_mel_gives_the_single_server_bytes_through_the_proxy(mel_cluster):
    mel = np.random.default_rng(5).normal(-5, 2, (24, MEL["n_mels"])).astype("<f4")
    pieces = [mel[a:b].tobytes() for a, b in ((0, 1), (1, 4), (4, 15), (15, 24))] + [
        {"type": "end"}]
    start = {"model": "mel", "seed": 11, "format": "pcm"}
    proxied = asyncio.run(ws_mel_stream(mel_cluster.ws_url, start, pieces, pause=0.02))
    direct = asyncio.run(ws_mel_stream(mel_cluster.single.ws_url, start, pieces))
    assert proxied["error"] is None and proxied["close_code"] == 1000, proxied["error"]
    assert proxied["done"]["status"] == "done"
    assert len(proxied["audio"]) == 24 * MEL["hop_length"] * 2
    assert proxied["audio"] == direct["audio"]


def test_a_bad_frame_through_the_proxy_is_1007(mel_cluster):
    bad = np.zeros((2, MEL["n_mels"]), "<f4").tobytes()[:-4]
    out = asyncio.run(ws_mel_stream(mel_cluster.ws_url, {"model": "mel", "seed": 1}, [bad]))
    assert out["close_code"] == 1007
    assert "whole number of frames" in out["error"]["message"]
