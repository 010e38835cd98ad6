"""Streamed mels gathered into one step, through a real uvicorn process: two paced streams
whose frames come a few ms apart step together (the engine's batch occupancy in /metrics),
their audio is bitwise the whole mel's, and a stream whose partner stalls is held for at
most the window (WAVENET_MEL_GATHER_HOPS)."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
import websockets

from tests.helpers.server import BACKEND, MEL, Server, metric
from tests.helpers.ws import empty_result, read_to_end, ws_whole_mel

HOP, WIDTH = MEL["hop_length"], MEL["n_mels"]
GATHER_HOPS = 40              # 40 x 128 samples at 16 kHz: a step held at most 320 ms
FRAMES = 12


@pytest.fixture(scope="module")
def gather_server(checkpoints, tmp_path_factory):
    srv = Server.ready(checkpoints, {"WAVENET_BACKEND": BACKEND, "WAVENET_MAX_STREAMS": "2",
                                     "WAVENET_MEL_GATHER_HOPS": str(GATHER_HOPS)},
                       tmp_path_factory.mktemp("logs") / "gather.log")
    yield srv
    srv.stop()


def mel_of(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(-5, 2, (FRAMES, WIDTH)).astype(np.float32)


async def open_stream(url: str, seed: int):
    ws = await websockets.connect(url, max_size=None)
    await ws.send(json.dumps({"type": "start", "model": "mel", "mel_stream": True,
                              "seed": seed, "temperature": 1.0}))
    out = empty_result()
    return ws, out, asyncio.create_task(read_to_end(ws, out))


def occupancy(url: str) -> tuple[float, float]:
    """(steps, steps with one of the two slots) of model "mel" so far."""
    text = httpx.get(url + "/metrics").text
    steps = metric(text, "wavenet_engine_step_seconds_count", model="mel") or 0.0
    alone = metric(text, "wavenet_batch_occupancy_bucket", le="0.5", model="mel") or 0.0
    return steps, alone


@pytest.mark.skipif(BACKEND != "cpu", reason="bitwise chunk invariance is the cpu backend's")
def test_paced_streams_step_together_and_give_the_whole_mels_audio(gather_server):
    url = gather_server.ws_url
    mels = [mel_of(1), mel_of(2)]

    async def scenario():
        a, b = await open_stream(url, 1), await open_stream(url, 2)
        for f in range(FRAMES):        # a's frame, b's 5 ms later, the next 30 ms on
            await a[0].send(mels[0][f:f + 1].tobytes())
            await asyncio.sleep(0.005)
            await b[0].send(mels[1][f:f + 1].tobytes())
            await asyncio.sleep(0.03)
        for ws, _, reader in (a, b):
            await ws.send(json.dumps({"type": "end"}))
            await asyncio.wait_for(reader, 30)
            await ws.close()
        return a[1], b[1]

    before = occupancy(gather_server.url)
    streamed = asyncio.run(scenario())
    steps, alone = (x - y for x, y in zip(occupancy(gather_server.url), before))
    for out, mel, seed in zip(streamed, mels, (1, 2)):
        whole = ws_whole_mel(url, {"model": "mel", "seed": seed, "temperature": 1.0}, mel,
                             HOP)
        assert out["done"]["samples"] == FRAMES * HOP and out["audio"] == whole["audio"]
    # FRAMES - 1 frames become final one at a time, each in a step of both streams; each
    # end releases its stream's last frame alone (and the whole-mel runs above came after)
    together = steps - alone
    assert together >= FRAMES - 2, (steps, alone)


def test_a_stalled_partner_holds_a_stream_at_most_the_window(gather_server):
    url = gather_server.ws_url
    mel = mel_of(3)

    async def scenario():
        stalled = await open_stream(url, 4)
        await stalled[0].send(mel_of(4)[:2].tobytes())     # one final frame, then nothing
        runner = await open_stream(url, 3)
        for f in range(4):
            await runner[0].send(mel[f:f + 1].tobytes())
        await runner[0].send(json.dumps({"type": "end"}))
        await asyncio.wait_for(runner[2], 30)
        still_open = stalled[1]["done"] is None
        await stalled[0].send(json.dumps({"type": "end"}))
        await asyncio.wait_for(stalled[2], 30)
        return runner[1], still_open

    out, still_open = asyncio.run(scenario())
    assert still_open and out["done"]["samples"] == 4 * HOP
