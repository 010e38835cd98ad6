"""Issue 27's cheap attacks, each against a real `wavenet serve`: a tiny WAV whose header asks
for gigabytes, `seconds: 1e308`, a lone surrogate as the WebSocket key. Each is a clear 4xx or
close code, fast, and the server's memory does not move."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
import time

import httpx
import pytest
import websockets

from tests.helpers.server import BACKEND, Server
from tests.helpers.ws import read_error, ws_error
from wavenet_core.audio.wav import MAX_RATE, MIN_RATE

KEY = "hostile-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def keyed(checkpoints, tmp_path_factory):
    """A server with an API key, serving the plain model."""
    folder = tmp_path_factory.mktemp("keyed")
    (folder / "plain.safetensors").write_bytes((checkpoints / "plain.safetensors").read_bytes())
    srv = Server.ready(folder, {"WAVENET_BACKEND": BACKEND, "WAVENET_API_KEY": KEY},
                       folder / "server.log")
    yield srv
    srv.stop()


def tiny_wav(rate: int, samples: int, width: int = 2) -> bytes:
    """A PCM WAV of `samples` zero samples whose header says `rate` (any 32-bit value)."""
    data = bytes(width * samples)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, (rate * width) & 0xFFFFFFFF, width, 8 * width)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt "
            + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.parametrize("rate,samples", [(1_000_003, 100), (4_294_967_291, 100), (1, 500),
                                          (MIN_RATE - 1, 100), (MAX_RATE + 1, 100)])
def test_wav_rate_outside_8_to_192_khz_is_422_before_any_resampling(client, server, rate,
                                                                    samples):
    wav = tiny_wav(rate, samples)
    assert len(wav) < 1100
    before = rss_bytes(server.proc.pid)
    t0 = time.perf_counter()
    r = client.post("/v1/synthesize", json={"model": "mel",
                                            "audio": base64.b64encode(wav).decode()})
    elapsed = time.perf_counter() - t0
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == "audio" and f"{rate} Hz" in error["message"]
    assert "8000-192000 Hz" in error["message"]
    assert elapsed < 1.0
    assert rss_bytes(server.proc.pid) - before < 50 << 20


def test_wav_rates_at_the_edges_are_accepted(client):
    for rate in (MIN_RATE, MAX_RATE):
        wav = tiny_wav(rate, rate // 20)              # 50 ms
        r = client.post("/v1/synthesize", json={"model": "mel", "format": "pcm",
                                                "audio": base64.b64encode(wav).decode()})
        assert r.status_code == 200, r.text


def test_huge_seconds_is_422_not_500(client):
    for seconds in (1e308, 1.7e308, 1e20):
        r = client.post("/v1/synthesize", json={"model": "plain", "seconds": seconds})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "seconds"
        assert "30 s limit" in r.json()["error"]["message"]


def test_websocket_api_key_with_a_lone_surrogate_is_unauthorized(keyed):
    start = json.dumps({"type": "start", "model": "plain", "num_samples": 64,
                        "api_key": "\ud800"})
    assert "\\ud800" in start                    # sent as the JSON escape, as a client would
    error, code = asyncio.run(ws_error(keyed.ws_url, start))
    assert code == 1008 and error["code"] == "unauthorized"


def test_malformed_json_without_a_key_is_401_not_422(keyed):
    r = httpx.post(keyed.url + "/v1/synthesize", content=b"{not json",
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer" and r.headers["x-request-id"]
    ok = httpx.post(keyed.url + "/v1/synthesize", content=b"{not json",
                    headers={"Content-Type": "application/json", **AUTH})
    assert ok.status_code == 422


def test_the_key_is_checked_before_the_body_is_read(keyed):
    """A 5 MB upload without a key is refused after its headers: the server does not wait
    for (or parse) the body, and closes the connection."""
    head = (f"POST /v1/synthesize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            f"application/json\r\nContent-Length: {5 << 20}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", keyed.port), timeout=3) as sock:
        sock.sendall(head + b'{"model": "plain", "text": "' + b"a" * 1000)
        t0 = time.perf_counter()
        reply = b""
        while b"\r\n\r\n" not in reply:
            data = sock.recv(4096)
            if not data:
                break
            reply += data
        elapsed = time.perf_counter() - t0
    assert reply.startswith(b"HTTP/1.1 401"), reply[:200]
    assert b"connection: close" in reply.lower()
    assert elapsed < 1.0


def test_websocket_from_another_origin_is_refused(keyed):
    async def connect(origin):
        async with websockets.connect(keyed.ws_url, origin=origin,
                                      additional_headers=AUTH) as ws:
            await ws.send(json.dumps({"type": "start", "model": "plain", "num_samples": 64}))
            return await read_error(ws)

    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(connect("http://evil.example"))
    assert refused.value.response.status_code == 403
    own = f"http://127.0.0.1:{keyed.port}"                 # the server's own page
    assert asyncio.run(connect(own)) == (None, 1000)
    assert asyncio.run(connect(None)) == (None, 1000)       # not a browser


def test_http_from_another_origin_is_403_but_the_page_loads(keyed):
    body = {"model": "plain", "num_samples": 64}
    r = httpx.post(keyed.url + "/v1/synthesize", json=body,
                   headers={**AUTH, "Origin": "http://evil.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "origin_not_allowed"
    assert httpx.post(keyed.url + "/v1/synthesize", json=body, headers={
        **AUTH, "Origin": f"http://127.0.0.1:{keyed.port}"}).status_code == 200
    assert httpx.get(keyed.url + "/", headers={"Origin": "http://evil.example"}
                     ).status_code == 200


def test_allowed_origins_and_the_no_key_warning(checkpoints, tmp_path, keyed):
    """A listed origin may connect; no key beyond loopback is warned about at start."""
    (tmp_path / "plain.safetensors").write_bytes((checkpoints / "plain.safetensors")
                                                 .read_bytes())
    srv = Server.ready(tmp_path, {"WAVENET_BACKEND": BACKEND,
                                  "WAVENET_ALLOWED_ORIGINS": "https://app.example"},
                       tmp_path / "server.log", args=("--host", "0.0.0.0"))
    try:
        ok = httpx.post(srv.url + "/v1/synthesize", json={"num_samples": 64},
                        headers={"Origin": "https://app.example"})
        other = httpx.post(srv.url + "/v1/synthesize", json={"num_samples": 64},
                           headers={"Origin": "https://other.example"})
        srv.log()                                  # flushed
        log = srv.log_path.read_text(errors="replace")
    finally:
        srv.stop()
    assert ok.status_code == 200 and other.status_code == 403
    assert "listening on 0.0.0.0 with no API key" in log
    assert "with no API key" not in keyed.log_path.read_text(errors="replace")
