"""A mel streamed in over WS /v1/stream (`"mel_stream": true`), through a real uvicorn process:
same audio as the mel sent whole, audio before the end, one frame of lookahead, bad frames
end that stream only, idle and length limits."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
import websockets

from tests.helpers.server import BACKEND, MEL
from tests.helpers.ws import (
    read_error,
    ws_audio_before_end,
    ws_mel_stream,
    ws_synthesize,
    ws_whole_mel,
)

HOP, WIDTH = MEL["hop_length"], MEL["n_mels"]


def random_mel(frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(-5, 2, (frames, WIDTH)).astype(np.float32)


def pieces_of(mel: np.ndarray, sizes, as_json=False) -> list:
    out, start = [], 0
    for size in sizes:
        part = mel[start:start + size]
        start += size
        out.append({"type": "mel", "frames": part.tolist()} if as_json
                   else part.astype("<f4").tobytes())
    assert start == len(mel)
    return out + [{"type": "end"}]


@pytest.mark.skipif(BACKEND != "cpu", reason="bitwise chunk invariance is the cpu backend's")
def test_streamed_mel_gives_the_same_audio_as_the_whole_mel(server):
    mel = random_mel(23, seed=3)
    start = {"model": "mel", "seed": 11, "temperature": 1.0}
    whole = ws_whole_mel(server.ws_url, start, mel, HOP)
    binary = asyncio.run(ws_mel_stream(server.ws_url, start, pieces_of(mel, [1, 2, 7, 1, 12]),
                                       pause=0.02))
    as_json = asyncio.run(ws_mel_stream(server.ws_url, start,
                                        pieces_of(mel, [5, 1, 17], as_json=True)))
    for streamed in (binary, as_json):
        assert streamed["close_code"] == 1000, streamed
        assert streamed["started"]["num_samples"] is None
        assert streamed["done"]["samples"] == 23 * HOP
        assert streamed["audio"] == whole["audio"]


def test_audio_flows_before_the_end_with_one_frame_of_lookahead(server):
    audio, done = ws_audio_before_end(server.ws_url, "mel", random_mel(3).tobytes(),
                                      2 * HOP)   # frames 0 and 1 are final; 2 waits for 3
    assert len(audio) == 2 * 3 * HOP and done["status"] == "done" and done["samples"] == 3 * HOP


@pytest.mark.parametrize("bad,says", [
    (np.zeros((2, WIDTH), np.float32).tobytes()[:-4], "not a whole number of frames"),
    (np.full((1, WIDTH), np.nan, np.float32).tobytes(), "NaN or infinite"),
    ({"type": "mel", "frames": [[0.0] * (WIDTH - 1)]}, f"must have {WIDTH} values"),
    ({"type": "mel", "frames": [[0.0] * WIDTH, [0.0]]}, "different lengths"),
    ({"type": "mel", "frames": "nope"}, "list of frames"),
    ({"type": "end"}, "no mel frame"),
])
def test_bad_frames_end_that_stream_only_with_1007(server, bad, says):
    async def scenario():
        other = asyncio.create_task(ws_synthesize(server.ws_url, {"model": "plain",
                                                                  "num_samples": 4000}))
        broken = await ws_mel_stream(server.ws_url, {"model": "mel"}, [bad])
        return broken, await other

    broken, other = asyncio.run(scenario())
    assert broken["close_code"] == 1007, broken
    assert broken["error"]["code"] == "invalid_mel" and says in broken["error"]["message"]
    assert broken["error"]["field"] == "mel"
    assert other["close_code"] == 1000 and other["done"]["samples"] == 4000


def test_a_stream_waiting_for_frames_does_not_hold_up_the_others(server):
    async def scenario():
        waiting = asyncio.create_task(ws_mel_stream(
            server.ws_url, {"model": "mel"}, [random_mel(2).tobytes()]))   # then nothing
        await asyncio.sleep(0.2)
        plain = await ws_synthesize(server.ws_url, {"model": "plain", "num_samples": 8000})
        assert not waiting.done(), "the waiting stream should still be waiting"
        return plain, await waiting

    plain, waiting = asyncio.run(scenario())
    assert plain["done"]["samples"] == 8000
    # then the idle limit (2 s on the test server) ends the waiting one, with what it had
    assert waiting["close_code"] == 1008 and waiting["error"]["code"] == "mel_timeout"
    assert "WAVENET_MEL_IDLE_SECONDS" in waiting["error"]["message"]
    assert len(waiting["audio"]) == 2 * HOP


def test_a_mel_longer_than_the_limit_ends_with_1009(server):
    limit_frames = 30 * 16000 // HOP            # WAVENET_MAX_SECONDS on the test server
    half = np.zeros((limit_frames // 2 + 1, WIDTH), np.float32).tobytes()
    res = asyncio.run(ws_mel_stream(server.ws_url, {"model": "mel", "temperature": 0},
                                    [half, half]))
    assert res["close_code"] == 1009 and res["error"]["code"] == "mel_too_long"
    assert "30 s limit" in res["error"]["message"]


@pytest.mark.parametrize("start,then,code,error_code", [
    ({"model": "plain"}, None, 1007, "invalid_request"),
    ({"model": "mel", "mel": [[0.0] * WIDTH]}, None, 1007, "invalid_request"),
    ({"model": "mel"}, {"type": "start"}, 1008, "protocol_error"),
])
def test_mel_stream_protocol_errors(server, start, then, code, error_code):
    async def scenario():
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(json.dumps({"type": "start", "mel_stream": True, **start}))
            if then is not None:
                await ws.recv()
                await ws.send(json.dumps(then))
            return await read_error(ws)

    error, close = asyncio.run(scenario())
    assert close == code and error["code"] == error_code, error


def test_mel_stream_over_http_is_a_422_naming_the_field(server):
    r = httpx.post(server.url + "/v1/synthesize", json={"model": "mel", "mel_stream": True})
    assert r.status_code == 422 and r.json()["error"]["field"] == "mel_stream"
