"""A second server (torch backend, 2 slots, no waiting room, an API key): auth, overload,
graceful shutdown. Generation is slow here on purpose, so long streams stay live."""

from __future__ import annotations

import asyncio
import json
import shutil
import time

import httpx
import pytest
import websockets

from tests.helpers.server import Server, metric
from tests.helpers.ws import ws_error, ws_synthesize

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def guarded(checkpoints, tmp_path_factory):
    folder = tmp_path_factory.mktemp("guarded")
    shutil.copy(checkpoints / "plain.safetensors", folder / "plain.safetensors")
    srv = Server(folder, {"WAVENET_BACKEND": "torch", "WAVENET_MAX_STREAMS": "2",
                          "WAVENET_MAX_WAITING": "0", "WAVENET_API_KEY": KEY,
                          "WAVENET_SHUTDOWN_GRACE_SECONDS": "3", "WAVENET_TORCH_THREADS": "1"},
                 folder / "server.log")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def test_api_key_required_on_v1_only(guarded):
    url = guarded.url
    r = httpx.get(url + "/v1/models")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "unauthorized"
    assert httpx.get(url + "/v1/models", headers={"Authorization": "Bearer nope"}
                     ).status_code == 401
    assert httpx.post(url + "/v1/synthesize", json={"num_samples": 10}).status_code == 401
    assert httpx.get(url + "/v1/models", headers=AUTH).status_code == 200
    for path in ("/healthz", "/readyz", "/metrics"):
        assert httpx.get(url + path).status_code == 200
    r = httpx.post(url + "/v1/synthesize", json={"num_samples": 64, "format": "pcm"},
                   headers=AUTH)           # one model served: `model` may be left out
    assert r.status_code == 200 and len(r.content) == 128


def test_websocket_auth_by_header_or_start_message(guarded):
    start = {"model": "plain", "num_samples": 64}
    error, code = asyncio.run(ws_error(guarded.ws_url, json.dumps({"type": "start", **start})))
    assert code == 1008 and error["code"] == "unauthorized"
    by_message = asyncio.run(ws_synthesize(guarded.ws_url, {**start, "api_key": KEY}))
    by_header = asyncio.run(ws_synthesize(guarded.ws_url, start, headers=AUTH))
    assert by_message["close_code"] == by_header["close_code"] == 1000
    assert by_message["audio"] == by_header["audio"] and len(by_header["audio"]) == 128


async def _hold(url: str, n: int, seconds: float = 30.0) -> list:
    conns = []
    for _ in range(n):
        ws = await websockets.connect(url, additional_headers=AUTH)
        await ws.send(json.dumps({"type": "start", "model": "plain", "seconds": seconds}))
        assert json.loads(await ws.recv())["type"] == "started"
        conns.append(ws)
    return conns


def _wait_live(url: str, want: float, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metric(httpx.get(url + "/metrics").text, "wavenet_live_streams", model="plain") == want:
            return
        time.sleep(0.05)
    raise AssertionError(f"live streams never reached {want}")


def test_full_queue_is_503_with_retry_after(guarded):
    async def main():
        conns = await _hold(guarded.ws_url, 2)
        async with httpx.AsyncClient(base_url=guarded.url, headers=AUTH) as client:
            r = await client.post("/v1/synthesize", json={"num_samples": 100})
        error, code = await ws_error(guarded.ws_url, json.dumps(
            {"type": "start", "num_samples": 100, "api_key": KEY}))
        for ws in conns:
            await ws.close()
        return r, error, code

    r, error, code = asyncio.run(main())
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "overloaded"
    assert code == 1013 and error["code"] == "overloaded"
    _wait_live(guarded.url, 0)


def test_graceful_shutdown_finishes_short_streams_and_ends_long_ones(guarded):
    async def main():
        long_task = asyncio.ensure_future(ws_error(guarded.ws_url, json.dumps(
            {"type": "start", "seconds": 30, "api_key": KEY})))
        short_task = asyncio.ensure_future(ws_synthesize(
            guarded.ws_url, {"num_samples": 400, "api_key": KEY}))
        await asyncio.to_thread(_wait_live, guarded.url, 2)
        guarded.proc.send_signal(15)
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(base_url=guarded.url, headers=AUTH) as client:
            ready = await client.get("/readyz")
            refused = await client.post("/v1/synthesize", json={"num_samples": 10})
        return await long_task, await short_task, ready, refused

    t0 = time.monotonic()
    (long_error, long_code), short, ready, refused = asyncio.run(main())
    assert ready.status_code == 503 and ready.json()["status"] == "draining"
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "shutting_down"
    assert short["done"]["status"] == "done" and len(short["audio"]) == 800
    assert long_code == 1001 and long_error["code"] == "shutting_down"
    assert guarded.proc.wait(15) == 0
    assert time.monotonic() - t0 < 15
