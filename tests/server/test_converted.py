"""A real `wavenet serve` (uvicorn on 127.0.0.1, backend auto) serves converted r9y9 models:
the mixture-of-logistics vocoder with its learned upsampler gives the library's audio for a
mel sent whole and the same audio for the mel streamed in piece by piece; `audio` and `text`
make the features of the model's recipe at its rate, and features of another kind are a 422;
a softmax model with speakers serves plain requests."""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
import numpy as np
import pytest
import torch

from tests.helpers.recipes_reference import V01_PRESET, r9y9_v01_reference
from tests.helpers.server import Server
from tests.helpers.ws import ws_mel_stream, ws_synthesize
from wavenet_core import load_checkpoint
from wavenet_core.audio.recipes import model_features
from wavenet_core.audio.wav import float_to_pcm16, read_wav, wav_bytes
from wavenet_core.bench.r9y9_models import random_r9y9
from wavenet_core.generation.conditioning import local_from_mel, mel_from_audio
from wavenet_core.generation.registry import make_backend
from wavenet_core.generation.session import synthesize
from wavenet_core.interop.r9y9 import convert_r9y9
from wavenet_core.text.speech import SAMPLE_RATE, speak
from wavenet_core.text.voices import available_voices

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
    assert models["mol"]["features"] == "r9y9" and models["softmax"]["features"] is None
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


def _post(srv, body: dict) -> httpx.Response:
    return httpx.post(srv.url + "/v1/synthesize", json={"model": "mol", "seed": 9,
                                                        "format": "pcm", **body}, timeout=120)


def _npy(mel: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, mel.astype("<f4"))
    return base64.b64encode(buf.getvalue()).decode()


def test_audio_gets_the_recipes_features_bitwise(converted):
    """A 16 kHz WAV through `audio`: the server resamples it to the model's 22,050 Hz and
    makes r9y9 v0.1.x features (their preset recorded by convert), which equal their own
    formulas within 1e-4; the audio is bitwise that of sending those features as `mel`."""
    folder, srv = converted
    config = load_checkpoint(folder / "mol.safetensors").config
    assert config.features.kind == "r9y9" and config.sample_rate == 22050
    wav = wav_bytes(np.random.default_rng(4).uniform(-0.5, 0.5, 1600), 16000)
    audio, _ = read_wav(wav, config.sample_rate)
    mel = model_features(audio, config)
    np.testing.assert_allclose(mel, r9y9_v01_reference(audio, 22050, V01_PRESET, config.mel),
                               rtol=0, atol=1e-4)
    by_audio = _post(srv, {"audio": base64.b64encode(wav).decode()})
    by_mel = _post(srv, {"mel": _npy(mel)})
    assert by_audio.status_code == by_mel.status_code == 200, (by_audio.text, by_mel.text)
    assert len(by_audio.content) == 2 * len(mel) * config.mel.hop_length
    assert by_audio.content == by_mel.content
    assert len(set(np.frombuffer(by_audio.content, "<i2").tolist())) > 10


@pytest.mark.skipif(not available_voices(), reason="no speech synthesizer here")
def test_text_is_resampled_to_the_models_rate(converted):
    """`text` renders at 16 kHz; the 22,050 Hz model gets the features of its resampling."""
    folder, srv = converted
    config = load_checkpoint(folder / "mol.safetensors").config
    voice = available_voices()[0]
    spoken = speak(voice, "Hi.")
    mel = mel_from_audio(spoken, config, SAMPLE_RATE)
    by_text = _post(srv, {"text": "Hi.", "voice": voice.name})
    by_mel = _post(srv, {"mel": _npy(mel)})
    assert by_text.status_code == by_mel.status_code == 200, (by_text.text, by_mel.text)
    assert by_text.content == by_mel.content
    seconds = len(by_text.content) / 2 / config.sample_rate
    assert abs(seconds - len(spoken) / SAMPLE_RATE) < 0.1


def test_features_of_another_kind_are_refused(converted):
    """This project's log-mel (natural log, mostly negative) sent to the r9y9 model (features
    in [0, 1]) is a 422 that says what the model expects, not noise."""
    _, srv = converted
    ours_kind = np.random.default_rng(2).normal(-5.0, 2.0, (9, 4)).astype(np.float32)
    r = _post(srv, {"mel": ours_kind.tolist()})
    assert r.status_code == 422, r.text
    detail = r.text
    assert r.json()["error"]["field"] == "mel"
    assert "expects r9y9 wavenet_vocoder v0.1.x mel" in detail, detail
    assert "normalised to [0, 1]" in detail and "band 0 within [-0.0" in detail, detail
