"""Fair shares under abuse, against a real server with two API keys (issue 27): a flooding
key is shed first (429 + Retry-After), the other key takes the next free slot, a client
holds at most its cap of streams, and a mel streamed in too slowly loses its slot."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import time

import httpx
import numpy as np
import pytest
import websockets

from tests.helpers.server import MEL, Server, metric
from tests.helpers.ws import read_error

FLOOD, FAIR = "flooding-key", "fair-key"


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def shared(checkpoints, tmp_path_factory):
    """2 slots, 2 waiting places, two keys; mel streams may wait for frames a minute."""
    folder = tmp_path_factory.mktemp("fair")
    for name in ("plain", "mel"):
        shutil.copy(checkpoints / f"{name}.safetensors", folder / f"{name}.safetensors")
    srv = Server.ready(folder, {"WAVENET_BACKEND": "torch", "WAVENET_TORCH_THREADS": "1",
                                "WAVENET_MAX_STREAMS": "2", "WAVENET_MAX_WAITING": "2",
                                "WAVENET_MAX_STREAMS_PER_CLIENT": "8",
                                "WAVENET_API_KEYS": f"{FLOOD},{FAIR}",
                                "WAVENET_MEL_LAG_SECONDS": "60", "WAVENET_MEL_IDLE_SECONDS": "60"},
                       folder / "server.log")
    yield srv
    srv.stop()


def wait_for(url: str, live: float, waiting: float, model: str = "plain",
             timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = httpx.get(url + "/metrics").text
        if (metric(text, "wavenet_live_streams", model=model) == live
                and metric(text, "wavenet_waiting_streams", model=model) == waiting):
            return
        time.sleep(0.02)
    raise AssertionError(f"never {live} live and {waiting} waiting")


async def hold(url: str, key: str):
    """A mel stream that holds its place (a slot, or a place in the queue) until ended."""
    ws = await websockets.connect(url, additional_headers=auth(key))
    await ws.send(json.dumps({"type": "start", "model": "mel", "mel_stream": True}))
    assert json.loads(await ws.recv())["type"] == "started"
    return ws


async def finish(ws) -> tuple[dict | None, int]:
    """Send a frame and the end; -> (the last event, close code)."""
    with contextlib.suppress(websockets.ConnectionClosed):
        await ws.send(np.zeros((1, MEL["n_mels"]), "<f4").tobytes())
        await ws.send(json.dumps({"type": "end"}))
    return await read_error(ws)


def test_a_flood_is_shed_first_and_the_other_key_goes_next(shared):
    short = {"model": "mel", "mel": np.zeros((10, MEL["n_mels"])).tolist(), "format": "pcm"}

    async def scenario():
        live = [await hold(shared.ws_url, FLOOD) for _ in range(2)]
        queued = [await hold(shared.ws_url, FLOOD) for _ in range(2)]
        await asyncio.to_thread(wait_for, shared.url, 2, 2, "mel")
        async with httpx.AsyncClient(base_url=shared.url, timeout=60) as client:
            # one key alone: a full queue is the server being busy
            busy = await client.post("/v1/synthesize", json=short, headers=auth(FLOOD))
            fair = asyncio.create_task(client.post("/v1/synthesize", json=short,
                                                   headers=auth(FAIR)))
            shed = await read_error(queued[1])          # the flood's newest waiting stream
            await asyncio.to_thread(wait_for, shared.url, 2, 2, "mel")
            flooding = await client.post("/v1/synthesize", json=short, headers=auth(FLOOD))
            await finish(live[0])                       # a slot frees: the fair key's turn
            fair = await fair
            await asyncio.to_thread(wait_for, shared.url, 2, 0, "mel")
            rest = [await finish(ws) for ws in (live[1], queued[0])]
        return busy, shed, flooding, fair, rest

    busy, (shed, shed_code), flooding, fair, rest = asyncio.run(scenario())
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "overloaded"
    assert shed_code == 4429 and shed["code"] == "too_many_requests"
    assert flooding.status_code == 429 and flooding.headers["retry-after"] == "2"
    assert flooding.json()["error"]["code"] == "too_many_requests"
    # the fair key took the first free slot, ahead of the flood's older waiting stream
    assert fair.status_code == 200 and len(fair.content) == 2 * 10 * MEL["hop_length"]
    assert [code for _, code in rest] == [1000, 1000]


def test_a_full_queue_refuses_before_preparing(shared):
    """Admission comes first: with the mel model's slots and queue full, a request whose WAV
    would take work to decode (and is broken, so preparing it is a 422) gets the 503."""
    async def scenario():
        holders = [await hold(shared.ws_url, FLOOD) for _ in range(4)]
        await asyncio.to_thread(wait_for, shared.url, 2, 2, "mel")
        async with httpx.AsyncClient(base_url=shared.url, timeout=60) as client:
            refused = await client.post("/v1/synthesize", headers=auth(FLOOD), json={
                "model": "mel", "audio": base64.b64encode(b"RIFF....WAVEjunk").decode()})
        return refused, [await finish(ws) for ws in holders]

    refused, ends = asyncio.run(scenario())
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "overloaded"
    assert [code for _, code in ends] == [1000] * 4


@pytest.fixture(scope="module")
def capped(checkpoints, tmp_path_factory):
    """4 slots, the default cap (half the slots per client), a 1 s mel lag limit."""
    folder = tmp_path_factory.mktemp("capped")
    shutil.copy(checkpoints / "mel.safetensors", folder / "mel.safetensors")
    srv = Server.ready(folder, {"WAVENET_BACKEND": "torch", "WAVENET_TORCH_THREADS": "1",
                                "WAVENET_MAX_STREAMS": "4", "WAVENET_MAX_WAITING": "4",
                                "WAVENET_MAX_STREAMS_PER_CLIENT": "0",
                                "WAVENET_API_KEYS": f"{FLOOD},{FAIR}",
                                "WAVENET_MEL_LAG_SECONDS": "1", "WAVENET_MEL_IDLE_SECONDS": "5"},
                       folder / "server.log")
    yield srv
    srv.stop()


def test_a_client_holds_at_most_half_the_slots_by_default(capped):
    async def scenario():
        held = [await hold(capped.ws_url, FLOOD) for _ in range(2)]
        async with websockets.connect(capped.ws_url, additional_headers=auth(FLOOD)) as ws:
            await ws.send(json.dumps({"type": "start", "model": "mel", "mel_stream": True}))
            over_ws = await read_error(ws)
        async with httpx.AsyncClient(base_url=capped.url, timeout=60) as client:
            over_http = await client.post("/v1/synthesize", headers=auth(FLOOD), json={
                "model": "mel", "mel": np.zeros((2, MEL["n_mels"])).tolist()})
        other = await hold(capped.ws_url, FAIR)          # another key is not affected
        ends = [await finish(ws) for ws in (*held, other)]
        return over_ws, over_http, ends

    (error, code), over_http, ends = asyncio.run(scenario())
    assert code == 4429 and error["code"] == "too_many_streams"
    assert "WAVENET_MAX_STREAMS_PER_CLIENT" in error["message"]
    assert over_http.status_code == 429 and over_http.headers["retry-after"] == "1"
    assert [c for _, c in ends] == [1000] * 3


def test_a_mel_fed_too_slowly_loses_its_slot(capped):
    """One 8 ms frame every 0.3 s kept a stream live for hours (its idle timer restarted on
    every frame). More than WAVENET_MEL_LAG_SECONDS (1 s here) behind real time ends it."""
    frame = np.zeros((1, MEL["n_mels"]), "<f4").tobytes()

    async def scenario():
        t0 = time.monotonic()
        async with websockets.connect(capped.ws_url, additional_headers=auth(FAIR)) as ws:
            await ws.send(json.dumps({"type": "start", "model": "mel", "mel_stream": True}))
            with contextlib.suppress(websockets.ConnectionClosed):
                for _ in range(15):                      # 4.5 s of trickle, then the end
                    await ws.send(frame)
                    await asyncio.sleep(0.3)
                await ws.send(json.dumps({"type": "end"}))
            error, code = await read_error(ws)
        return error, code, time.monotonic() - t0

    error, code, elapsed = asyncio.run(scenario())
    assert code == 4410 and error["code"] == "mel_too_slow", (error, code)
    assert "behind real time" in error["message"] and error["field"] == "mel"
    assert elapsed < 3.5
