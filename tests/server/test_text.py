"""The text path: a synthesizer renders `text`, the vocoder resynthesizes its mel; with the
espeakng-loader wheel (a runtime dependency) it needs no system package."""

from __future__ import annotations

import io
import wave

import httpx
import pytest

from tests.helpers.server import BACKEND, Server
from wavenet_core.text import espeak_lib
from wavenet_core.text.voices import available_voices

pytestmark = pytest.mark.skipif(not available_voices(),
                                reason="no speech synthesizer here: the text path is off")


def test_models_list_voices_for_vocoders(client):
    models = {m["name"]: m for m in client.get("/v1/models").json()["data"]}
    assert "espeak-us-f2" in models["mel"]["voices"]
    assert models["plain"]["voices"] == []


def test_text_is_spoken_and_vocoded(client):
    r = client.post("/v1/synthesize", json={"model": "mel", "text": "Hello there.",
                                            "voice": "espeak-us-f2", "seed": 1})
    assert r.status_code == 200, r.text
    with wave.open(io.BytesIO(r.content)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert 0.3 < seconds < 5
    hop = client.get("/v1/models").json()["data"]
    assert any(m["name"] == "mel" for m in hop)


@pytest.mark.parametrize("body, field", [
    ({"model": "plain", "text": "hi", "seconds": 1}, "text"),
    ({"model": "mel", "text": "hi", "voice": "no-such-voice"}, "voice"),
    ({"model": "mel", "voice": "espeak-us-f2", "mel": [[0.0] * 20]}, "voice"),
    ({"model": "mel", "text": "hi", "mel": [[0.0] * 20]}, "text"),
    ({"model": "mel", "text": ""}, "text"),
    ({"model": "mel", "text": "x" * 601}, "text"),
])
def test_bad_text_requests_name_the_field(client, body, field):
    r = client.post("/v1/synthesize", json=body)
    assert r.status_code == 422, r.text
    assert field in r.text


@pytest.mark.skipif(not espeak_lib.available(), reason="the espeakng-loader wheel is missing")
def test_text_needs_no_system_package(checkpoints, tmp_path):
    """A server whose PATH holds no synthesizer program (as on a fresh machine without
    espeak-ng or flite) still lists espeak voices and speaks, from the wheel alone."""
    srv = Server.ready(checkpoints, {"WAVENET_BACKEND": BACKEND, "PATH": str(tmp_path)},
                       tmp_path / "server.log")
    try:
        models = {m["name"]: m for m in httpx.get(srv.url + "/v1/models").json()["data"]}
        voices = models["mel"]["voices"]
        assert voices and all(v.startswith("espeak-") for v in voices), voices
        body = {"model": "mel", "text": "Hello there.", "voice": "espeak-us-f2", "seed": 1}
        first = httpx.post(srv.url + "/v1/synthesize", json=body, timeout=60)
        again = httpx.post(srv.url + "/v1/synthesize", json=body, timeout=60)
    finally:
        srv.stop()
    assert first.status_code == 200, first.text
    assert first.content == again.content and len(first.content) > 44 + 2 * 16000 * 0.3
