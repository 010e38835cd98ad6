"""The text path: a synthesizer renders `text`, the vocoder resynthesizes its mel."""

from __future__ import annotations

import io
import shutil
import wave

import pytest

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng not installed: the text path is off")


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
