"""WebSocket /v1/stream through a real uvicorn process: protocol, concurrency, determinism."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import numpy as np
import pytest
import websockets

from tests.helpers.server import BACKEND, metric
from tests.helpers.ws import ws_error, ws_synthesize


def run(coro):
    return asyncio.run(coro)


def test_stream_protocol(server):
    res = run(ws_synthesize(server.ws_url, {"model": "plain", "num_samples": 3000, "seed": 4}))
    started, done = res["started"], res["done"]
    assert started["sample_rate"] == 16000 and started["format"] == "pcm"
    assert started["num_samples"] == 3000 and len(started["request_id"]) >= 8
    assert len(res["audio"]) == 6000 and res["close_code"] == 1000
    assert done["status"] == "done" and done["samples"] == 3000
    assert done["seconds"] == pytest.approx(3000 / 16000)
    assert done["time_to_first_audio_ms"] > 0 and done["real_time_factor"] > 0
    # the same request over HTTP gives the same audio
    r = httpx.post(server.url + "/v1/synthesize",
                   json={"model": "plain", "num_samples": 3000, "seed": 4, "format": "pcm"})
    assert r.content == res["audio"]


def test_stream_wav_format_starts_with_a_streaming_header(server):
    res = run(ws_synthesize(server.ws_url, {"model": "plain", "num_samples": 500,
                                            "format": "wav"}))
    assert res["started"]["format"] == "wav" and res["audio"][:4] == b"RIFF"
    assert len(res["audio"]) == 44 + 1000


def test_sixteen_concurrent_streams_all_finish(server):
    async def main():
        starts = [{"model": "plain", "num_samples": 4000 + 500 * i, "seed": i}
                  for i in range(16)]
        return await asyncio.gather(*(ws_synthesize(server.ws_url, s) for s in starts))

    results = run(main())
    for i, res in enumerate(results):
        assert res["close_code"] == 1000, res
        assert res["done"]["status"] == "done"
        assert len(res["audio"]) == 2 * (4000 + 500 * i)


@pytest.mark.skipif(BACKEND != "cpu", reason="bitwise batch invariance is the cpu backend's")
def test_same_seed_same_audio_alone_and_under_load(server):
    rng = np.random.default_rng(0)
    mel = (rng.standard_normal((40, 20)) * 2 - 4).round(3).tolist()
    probes = [{"model": "plain", "num_samples": 6000, "seed": 77, "temperature": 0.9},
              {"model": "spk", "num_samples": 5000, "seed": 5, "speaker": "cy"},
              {"model": "mel", "mel": mel, "seed": 3}]

    async def alone():
        return [await ws_synthesize(server.ws_url, p) for p in probes]

    async def loaded():
        noise = [ws_synthesize(server.ws_url, {"model": "plain", "num_samples": 8000 + 300 * i,
                                               "seed": 1000 + i}) for i in range(6)]
        noise += [ws_synthesize(server.ws_url, {"model": "spk", "num_samples": 7000 + 300 * i,
                                                "seed": 1500 + i, "speaker": 1})
                  for i in range(6)]
        noise += [ws_synthesize(server.ws_url, {"model": "mel", "mel": mel[: 10 + i],
                                                "seed": 2000 + i}) for i in range(6)]
        tasks = [asyncio.ensure_future(n) for n in noise]
        await asyncio.sleep(0.05)              # the probes join a running batch
        probes_res = await asyncio.gather(*(ws_synthesize(server.ws_url, p) for p in probes))
        await asyncio.gather(*tasks)
        return probes_res

    first = run(alone())
    second = run(loaded())
    for a, b in zip(first, second, strict=True):
        assert a["done"]["status"] == b["done"]["status"] == "done"
        assert len(a["audio"]) > 0 and a["audio"] == b["audio"]
    assert len(first[2]["audio"]) == 2 * 40 * 128


def test_cancel_ends_with_done_cancelled(server):
    async def main():
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(json.dumps({"type": "start", "model": "plain", "seconds": 30}))
            assert json.loads(await ws.recv())["type"] == "started"
            assert isinstance(await ws.recv(), bytes)
            await ws.send(json.dumps({"type": "cancel"}))
            done = None
            async for message in ws:
                if isinstance(message, str):
                    done = json.loads(message)
            return done, ws.close_code

    done, code = run(main())
    assert done["type"] == "done" and done["status"] == "cancelled" and code == 1000
    assert done["samples"] < 30 * 16000


def test_ws_disconnect_frees_the_slot(server):
    async def main():
        ws = await websockets.connect(server.ws_url)
        await ws.send(json.dumps({"type": "start", "model": "spk", "seconds": 30}))
        await ws.recv()
        await ws.recv()
        ws.transport.abort()      # vanish without a close handshake

    run(main())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = httpx.get(server.url + "/metrics").text
        if metric(text, "wavenet_live_streams", model="spk") == 0:
            break
        time.sleep(0.05)
    assert metric(text, "wavenet_live_streams", model="spk") == 0


@pytest.mark.parametrize("first,then,code,error_code,field", [
    (b"\x00binary", None, 1003, "unsupported_data", None),
    ("not json", None, 1007, "invalid_json", None),
    ('["a list"]', None, 1007, "invalid_request", "type"),
    ('{"type": "cancel"}', None, 1008, "protocol_error", "type"),
    ('{"type": "start", "model": "plain", "seconds": 1, "seed": -1}', None, 1007,
     "invalid_request", "seed"),
    ('{"type": "start", "model": "plain", "seconds": 1, "volume": 3}', None, 1007,
     "invalid_request", "volume"),
    ('{"type": "start", "model": "plain", "seconds": 99}', None, 1007, "invalid_request",
     "seconds"),
    ('{"type": "start", "model": "mel", "mel": [[1, 2]]}', None, 1007, "invalid_request", "mel"),
    ('{"type": "start", "model": "nope", "seconds": 1}', None, 4404, "model_not_found", "model"),
    ('{"type": "start", "model": "broken", "seconds": 1}', None, 1013, "model_unavailable",
     "model"),
    ('{"type": "start", "model": "plain", "seconds": 30}', '{"type": "start"}', 1008,
     "protocol_error", "type"),
])
def test_protocol_errors_get_error_and_close_code(server, first, then, code, error_code, field):
    error, close_code = run(ws_error(server.ws_url, first, then))
    assert close_code == code
    assert error["code"] == error_code and error.get("field") == field and error["message"]
    assert "Traceback" not in error["message"]


@pytest.mark.skipif(BACKEND != "cpu", reason="bitwise equality is the cpu backend's")
def test_server_audio_equals_the_library_single_stream_path(server, checkpoints):
    """The runner's slots, chunking and block-wise mel upsampling change nothing: the server
    gives the samples `wavenet_core.generation.session.synthesize` gives for the same request."""
    from wavenet_core.audio.wav import float_to_pcm16
    from wavenet_core.generation.conditioning import local_from_mel
    from wavenet_core.generation.registry import make_backend
    from wavenet_core.generation.session import synthesize
    from wavenet_core.model.checkpoint import load_checkpoint

    rng = np.random.default_rng(1)
    mel = (rng.standard_normal((70, 20)) - 3).astype(np.float32)   # 70 frames > one block
    backend = make_backend(load_checkpoint(checkpoints / "mel.safetensors"), "cpu", "cpu")
    local = local_from_mel(mel, backend.config)
    want = float_to_pcm16(synthesize(backend, len(local), seed=11, temperature=0.8,
                                     local=local, chunk=777)).tobytes()
    got = run(ws_synthesize(server.ws_url, {"model": "mel", "mel": mel.tolist(), "seed": 11,
                                            "temperature": 0.8}))
    assert got["audio"] == want
