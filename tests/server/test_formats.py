"""Every format and output rate on every endpoint of a real server (tiny models): POST whole
and streamed and the WebSocket give the same audio, which real decoders read back as the
wav output's samples (lossless formats bitwise; tests/server/wire says how close the lossy
ones are); resampled streams are bitwise the whole signal resampled at once; bad formats
and rates are a 400 (WebSocket: an error event, close 1007) naming the supported ones; and
no encoder is left open afterwards."""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import pytest

from server.wire.encoding import FORMATS
from server.wire.resample import resample_whole
from tests.helpers.decode import decode
from tests.helpers.server import metric
from tests.helpers.ws import ws_synthesize

BODY = {"model": "plain", "num_samples": 6000, "seed": 11}
MEDIA = {name: spec.media_type for name, spec in FORMATS.items()}


def synth(client, **fields):
    r = client.post("/v1/synthesize", json={**BODY, **fields})
    assert r.status_code == 200, r.text
    return r


@pytest.fixture(scope="module")
def reference(server) -> np.ndarray:
    """The 16 kHz samples every format must carry (the wav output's)."""
    r = httpx.post(server.url + "/v1/synthesize", json={**BODY, "format": "wav"}, timeout=30)
    return np.frombuffer(r.content[44:], "<i2")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_whole_and_streamed_are_the_same_audio(client, reference, fmt):
    whole, streamed = synth(client, format=fmt), synth(client, format=fmt, stream=True)
    assert whole.headers["content-type"] == streamed.headers["content-type"] == MEDIA[fmt]
    rate = 8000 if fmt == "ulaw" else 16000
    assert whole.headers["x-sample-rate"] == str(rate)
    assert whole.headers["x-audio-encoding"] == FORMATS[fmt].encoding
    a, rate_a = decode(whole.content, fmt, rate)
    b, rate_b = decode(streamed.content, fmt, rate)
    assert rate_a == rate_b == rate
    if fmt in ("wav", "pcm", "flac"):
        assert np.array_equal(a, reference) and np.array_equal(b, reference)
    elif fmt == "ulaw":
        assert np.array_equal(a, b) and len(a) == int(whole.headers["x-audio-samples"]) == 3000
    else:       # lossy: the same bytes but for a whole file's complete headers
        assert len(a) >= len(reference) and len(b) >= len(reference)
        if fmt != "mp3":
            assert whole.content == streamed.content


@pytest.mark.parametrize("fmt, rate", [("pcm", 24000), ("wav", 8000), ("flac", 44100),
                                       ("pcm", 48000), ("ulaw", 16000)])
def test_a_resampled_stream_is_the_whole_resampled_at_once(client, reference, fmt, rate):
    """The server resamples each response as its chunks come; the result is bitwise the
    whole 16 kHz signal resampled in one call, and as long as X-Audio-Samples says."""
    want = np.frombuffer(resample_whole(reference.tobytes(), 16000, rate), "<i2")
    for stream in (False, True):
        r = synth(client, format=fmt, sample_rate=rate, stream=stream)
        assert r.headers["x-sample-rate"] == str(rate)
        got, got_rate = decode(r.content, fmt, rate)
        assert got_rate == rate
        if fmt == "ulaw":
            want_ulaw = synth(client, format="pcm", sample_rate=rate).content
            assert len(got) == len(want_ulaw) // 2
        else:
            assert np.array_equal(got, want)
        assert int(r.headers["x-audio-samples"]) == len(got)


@pytest.mark.parametrize("fmt", ["mp3", "opus", "flac", "ulaw", "wav"])
def test_websocket_frames_are_the_http_stream(server, client, fmt):
    http = synth(client, format=fmt, stream=True).content
    res = asyncio.run(ws_synthesize(server.ws_url, {**BODY, "format": fmt}))
    started, done = res["started"], res["done"]
    assert res["close_code"] == 1000 and done["status"] == "done"
    assert started["format"] == fmt and started["encoding"] == FORMATS[fmt].encoding
    assert started["sample_rate"] == (8000 if fmt == "ulaw" else 16000)
    assert done["samples"] == started["num_samples"]
    assert res["audio"] == http


def test_websocket_sample_rate(server, reference):
    res = asyncio.run(ws_synthesize(server.ws_url, {**BODY, "format": "pcm",
                                                    "sample_rate": 24000}))
    want = resample_whole(reference.tobytes(), 16000, 24000)
    assert res["started"]["sample_rate"] == 24000
    assert res["started"]["num_samples"] == res["done"]["samples"] == len(want) // 2
    assert res["audio"] == want


@pytest.mark.parametrize("fields, field, names", [
    ({"format": "ogg"}, "format", "mp3, opus, aac, flac, wav, pcm, ulaw"),
    ({"format": "mp3", "sample_rate": 20000}, "sample_rate", "8000, 11025, 12000, 16000"),
    ({"format": "pcm", "sample_rate": 96000}, "sample_rate", "8000 to 48000 Hz"),
    ({"format": "opus", "sample_rate": 44100}, "sample_rate", "12000, 16000, 24000, 48000"),
])
def test_bad_format_or_rate_is_a_400_naming_the_supported(server, client, fields, field,
                                                          names):
    for stream in (False, True):
        r = client.post("/v1/synthesize", json={**BODY, **fields, "stream": stream})
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["code"] == "unsupported_format" and error["field"] == field
        assert names in error["message"]
    res = asyncio.run(ws_synthesize(server.ws_url, {**BODY, **fields}))
    assert res["close_code"] == 1007 and res["started"] is None
    assert res["error"]["field"] == field and names in res["error"]["message"]


@pytest.mark.parametrize("fmt", ["mp3", "opus"])
def test_a_client_that_leaves_mid_stream_takes_its_encoder_with_it(server, fmt):
    """An encoded stream left after its first bytes (over HTTP, then the WebSocket): its
    slot and its encoder and resampler are freed."""
    body = {"model": "plain", "seconds": 20, "format": fmt, "sample_rate": 24000}
    with httpx.stream("POST", server.url + "/v1/synthesize", json={**body, "stream": True},
                      timeout=30) as r:
        assert r.status_code == 200 and next(r.iter_raw())

    async def leave_ws():
        import json

        import websockets

        async with websockets.connect(server.ws_url) as ws:
            await ws.send(json.dumps({"type": "start", **body}))
            while not isinstance(await ws.recv(), bytes):
                pass
            ws.transport.abort()
    asyncio.run(leave_ws())
    deadline = time.monotonic() + 10
    while True:
        text = httpx.get(server.url + "/metrics").text
        if (metric(text, "wavenet_audio_encoders") == 0
                and metric(text, "wavenet_live_streams", model="plain") == 0):
            break
        assert time.monotonic() < deadline, "a stream or its encoder was left behind"
        time.sleep(0.05)


def test_no_encoder_is_left_open(server, client):
    """After every test above (the module's last): the gauge of open encoders and
    resamplers is back to zero."""
    deadline = time.monotonic() + 5
    while metric(client.get("/metrics").text, "wavenet_audio_encoders") != 0:
        assert time.monotonic() < deadline, "an encoder was left open"
        time.sleep(0.05)
