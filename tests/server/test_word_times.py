"""Word timestamps checked against the audio itself: the bundled trained vocoder (a random
model's output does not follow the mel) speaks three sentences through the real server,
whole (POST /v1/audio/speech `"timestamps": true`), as SSE and streamed in over the
WebSocket, at speed 1 and 2. Each word's interval holds speech, the pauses between
sentences hold silence, and the output's speech starts and stops within 50 ms of the words'
edges at each pause (the measured figures are printed: pytest -s)."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import numpy as np
import pytest

from server.settings import BUNDLED_MODELS
from tests.helpers.server import BACKEND, Server
from tests.helpers.ws import ws_text_stream

pytestmark = pytest.mark.skipif(
    not __import__("wavenet_core.text.espeak_lib", fromlist=["x"]).available(),
    reason="espeakng-loader (the bundled espeak-ng) is not installed")

TEXT = "Hello there, my friend. How are you today? It is sunny."
RATE, HOP = 16000, 80            # 5 ms frames
TOP_DB = 40.0


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server.ready(BUNDLED_MODELS / "vocoder.safetensors", {"WAVENET_BACKEND": BACKEND},
                     tmp_path_factory.mktemp("words") / "server.log")
    yield s
    s.stop()


def post(srv, speed: float, **fields) -> httpx.Response:
    return httpx.post(srv.url + "/v1/audio/speech", json={
        "model": "vocoder", "input": TEXT, "response_format": "pcm", "sample_rate": RATE,
        "speed": speed, **fields}, timeout=300)


def loudness(audio: np.ndarray) -> np.ndarray:
    """dB of each 5 ms frame under the loudest."""
    n = len(audio) // HOP
    rms = np.sqrt(np.mean(audio[:n * HOP].reshape(n, HOP) ** 2, axis=1) + 1e-12)
    return 20 * np.log10(rms / rms.max())


def pauses(db: np.ndarray) -> list[tuple[float, float]]:
    """Inner runs of silence (under -40 dB) of 50 ms or more, in seconds."""
    quiet, out, i = db < -TOP_DB, [], 0
    while i < len(quiet):
        j = i
        while j < len(quiet) and quiet[j]:
            j += 1
        if j - i >= 0.05 * RATE / HOP and i > 0 and j < len(quiet):
            out.append((i * HOP / RATE, j * HOP / RATE))
        i = max(j, i + 1)
    return out


def check_against_audio(audio: np.ndarray, words: list[dict]) -> list[float]:
    """Asserts the words fit the audio; returns each pause edge's error in seconds."""
    db = loudness(audio)
    assert [w["word"] for w in words] == ["Hello", "there", "my", "friend", "How", "are",
                                          "you", "today", "It", "is", "sunny"]
    for w in words:                    # speech in every word
        a, b = int(w["start"] * RATE) // HOP, int(w["end"] * RATE) // HOP
        assert b > a and db[a:b].max() > -20, w
    errors = []
    gaps = pauses(db)
    assert len(gaps) >= 3                # the comma and the two sentence ends
    for start, stop in gaps:
        before = max(w["end"] for w in words if w["end"] <= start + 0.1)
        after = min(w["start"] for w in words if w["start"] >= stop - 0.1)
        errors += [start - before, stop - after]
    for first, second in zip(words, words[1:]):     # silence between sentences
        if first["word"] in ("friend", "today"):
            a, b = int((first["end"] + 0.05) * RATE) // HOP, int(second["start"] * RATE) // HOP
            assert b - a >= 5 and db[a:b - 8].max() < -TOP_DB, (first, second)
    return errors


@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_words_fit_the_audio_whole_and_streamed(srv, speed):
    r = post(srv, speed, timestamps=True)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["format"] == "pcm" and body["sample_rate"] == RATE
    pcm = base64.b64decode(body["audio"])
    audio = np.frombuffer(pcm, "<i2") / 32768
    errors = check_against_audio(audio, body["words"])
    print(f"speed {speed}: pause edges off by "
          f"{', '.join(f'{1000 * e:+.0f}' for e in errors)} ms")
    assert max(abs(e) for e in errors) <= 0.050

    pieces = ["Hello there, my fr", "iend. How are you to", "day? It is sunny."]
    out = asyncio.run(ws_text_stream(srv.ws_url, pieces + [{"type": "end"}],
                          start={"model": "vocoder", "speed": speed, "sample_rate": RATE},
                          timeout=300))
    assert out["close_code"] == 1000
    assert out["audio"] == pcm                                  # bitwise the whole's
    streamed = [w for _, e in out["events"] if e["type"] == "words" for w in e["words"]]
    assert streamed == body["words"]


def test_sse_sends_the_words_before_their_audio(srv):
    whole = post(srv, 1.0, timestamps=True).json()
    r = post(srv, 1.0, timestamps=True, stream_format="sse")
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    words, heard = [], 0
    for event in events:
        if event["type"] == "speech.words":
            assert all(w["start"] >= heard / 2 / RATE for w in event["words"])
            words += event["words"]
        elif event["type"] == "speech.audio.delta":
            heard += len(base64.b64decode(event["audio"]))
    assert events[-1]["type"] == "speech.audio.done"
    assert words == whole["words"]
