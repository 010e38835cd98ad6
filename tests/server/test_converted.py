"""A real `wavenet serve` (uvicorn on 127.0.0.1, backend auto) serves converted r9y9 models:
the mixture-of-logistics vocoder with its learned upsampler gives the library's audio for a
mel sent whole and the same audio for the mel streamed in piece by piece; a softmax model
with speakers serves plain requests."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
import torch

from tests.helpers.server import Server
from tests.helpers.ws import ws_mel_stream, ws_synthesize
from wavenet_core import load_checkpoint
from wavenet_core.audio.wav import float_to_pcm16
from wavenet_core.bench.r9y9_models import random_r9y9
from wavenet_core.generation.conditioning import local_from_mel
from wavenet_core.generation.registry import make_backend
from wavenet_core.generation.session import synthesize
from wavenet_core.interop.r9y9 import convert_r9y9

pytest.importorskip("wavenet_vocoder")

MOL = dict(out_channels=9, layers=4, stacks=2, residual_channels=6, gate_channels=8,
           skip_out_channels=5, kernel_size=3, cin_channels=4,
           upsample_conditional_features=True, upsample_scales=[4, 4], scalar_input=True)
SOFTMAX = dict(out_channels=256, layers=4, stacks=2, residual_channels=6, gate_channels=6,
               skip_out_channels=5, kernel_size=2, gin_channels=3, n_speakers=2)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("converted")
    for name, kwargs in (("mol", MOL), ("softmax", SOFTMAX)):
        pth = folder / f"{name}.pth"
        torch.save({"state_dict": random_r9y9(**kwargs).state_dict()}, pth)
        convert_r9y9(pth, folder / f"{name}.safetensors", None)
        pth.unlink()
    srv = Server.ready(folder, {"WAVENET_BACKEND": "auto", "WAVENET_MAX_STREAMS": "4"},
                       folder / "server.log")
    try:
        yield folder, srv
    finally:
        srv.stop()


def test_converted_models_are_served(converted):
    folder, srv = converted
    models = {m["name"]: m for m in httpx.get(srv.url + "/v1/models").json()["data"]}
    assert models["mol"]["status"] == models["softmax"]["status"] == "ready", models
    assert models["mol"]["conditioning"] == ["mel"] and models["mol"]["hop_length"] == 16
    r = httpx.post(srv.url + "/v1/synthesize", json={"model": "softmax", "num_samples": 300,
                                                     "seed": 3, "speaker": 1, "format": "pcm"},
                   timeout=60)
    assert r.status_code == 200 and len(r.content) == 600


def test_mol_vocoder_gives_the_library_audio_whole_and_streamed(converted):
    folder, srv = converted
    mel = np.random.default_rng(0).random((9, 4)).astype(np.float32)
    model = load_checkpoint(folder / "mol.safetensors")
    local = local_from_mel(mel, model.config, model.upsampler)
    backend = make_backend(model)             # what the server's "auto" picks here
    expected = float_to_pcm16(synthesize(backend, len(local), seed=5, local=local,
                                         chunk=50)).tobytes()
    start = {"model": "mol", "seed": 5, "temperature": 1.0}
    whole = asyncio.run(ws_synthesize(srv.ws_url, {**start, "mel": mel.tolist()}))
    assert whole["done"]["status"] == "done", whole
    assert whole["audio"] == expected
    pieces = [mel[:2].astype("<f4").tobytes(), mel[2:7].astype("<f4").tobytes(),
              mel[7:].astype("<f4").tobytes(), {"type": "end"}]
    streamed = asyncio.run(ws_mel_stream(srv.ws_url, start, pieces, pause=0.02))
    assert streamed["close_code"] == 1000, streamed
    assert streamed["audio"] == expected
    assert len(set(np.frombuffer(expected, "<i2").tolist())) > 10
