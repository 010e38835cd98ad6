"""WS /v1/stream with `"text_stream": true`, against a real server process (tiny random mel
model, the bundled espeak-ng): text sent in pieces is spoken a sentence at a time as one
stream, bitwise the audio of the same text sent whole to /v1/audio/speech; `words` come
before the audio they describe; and each kind of bad input ends that stream only, with a
named error and close code, leaving no slot and no synthesizer process behind."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets

from tests.helpers.server import BACKEND, Server, metric
from tests.helpers.ws import ws_text_stream
from wavenet_core.text.espeak_lib import SPARES

pytestmark = pytest.mark.skipif(
    not __import__("wavenet_core.text.espeak_lib", fromlist=["x"]).available(),
    reason="espeakng-loader (the bundled espeak-ng) is not installed")

TEXT = "Hello there, my friend. How are you today? It is sunny."
RATE = 16000
START = {"type": "start", "text_stream": True, "model": "mel", "format": "pcm"}


@pytest.fixture(scope="module")
def srv(checkpoints, tmp_path_factory):
    s = Server.ready(checkpoints, {"WAVENET_BACKEND": BACKEND, "WAVENET_TEXT_IDLE_SECONDS": "1",
                                   "WAVENET_TEXT_PIECE_CHARS": "200",
                                   "WAVENET_MAX_INPUT_CHARS": "400",
                                   "WAVENET_MAX_SPEECH_SECONDS": "8"},
                     tmp_path_factory.mktemp("textstream") / "server.log")
    yield s
    s.stop()


def events(out: dict, kind: str) -> list[dict]:
    return [e for _, e in out["events"] if e["type"] == kind]


def whole_speech(srv, text: str, **fields) -> bytes:
    r = httpx.post(srv.url + "/v1/audio/speech", json={
        "model": "mel", "input": text, "response_format": "pcm", "sample_rate": RATE,
        **fields}, timeout=90)
    assert r.status_code == 200, r.text
    return r.content


def test_streamed_text_is_the_whole_texts_audio_bitwise(srv):
    """Pieces cut mid-word and mid-sentence give the sentences of the text sent whole, and
    so its audio, sample for sample: no gap, no repeat, no click between pieces."""
    pieces = ["Hel", "lo there, my fr", "iend. How are", " you today? It is ", "sunny."]
    assert "".join(pieces) == TEXT
    out = asyncio.run(ws_text_stream(srv.ws_url, pieces + [{"type": "end"}], pause=0.05))
    assert out["close_code"] == 1000, out["events"]
    assert events(out, "done")[0]["status"] == "done"
    assert out["audio"] == whole_speech(srv, TEXT)


def test_words_come_before_the_audio_they_describe(srv):
    out = asyncio.run(ws_text_stream(srv.ws_url, [TEXT, {"type": "end"}]))
    assert out["close_code"] == 1000
    words = [(seen, w) for seen, e in out["events"] if e["type"] == "words"
             for w in e["words"]]
    assert [w["word"] for _, w in words] == ["Hello", "there", "my", "friend", "How", "are",
                                             "you", "today", "It", "is", "sunny"]
    total_s = len(out["audio"]) / 2 / RATE
    for seen, w in words:
        assert seen / 2 / RATE <= w["start"] < w["end"] <= total_s
    starts = [w["start"] for _, w in words]
    assert starts == sorted(starts)


def test_flush_speaks_what_is_buffered_now(srv):
    """A piece with no sentence end is held until `flush`; then it is spoken at once,
    before the stream ends."""
    async def scenario():
        async with websockets.connect(srv.ws_url, max_size=None) as ws:
            await ws.send(json.dumps(START))
            assert json.loads(await ws.recv())["type"] == "started"
            await ws.send(json.dumps({"type": "text", "text": "Speak this now"}))
            with pytest.raises(asyncio.TimeoutError):       # no sentence end: held
                await asyncio.wait_for(ws.recv(), 0.5)
            await ws.send(json.dumps({"type": "flush"}))
            first = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert first["type"] == "words"
            assert [w["word"] for w in first["words"]] == ["Speak", "this", "now"]
            assert isinstance(await asyncio.wait_for(ws.recv(), 30), bytes)
            await ws.send(json.dumps({"type": "end"}))
            async for _ in ws:
                pass
            return ws.close_code
    assert asyncio.run(scenario()) == 1000


BAD = [
    ("piece after end", ["Hi there.", {"type": "end"}, "More."], 1008, "text_after_end"),
    ("oversize piece", ["x" * 201], 1009, "text_piece_too_long"),
    ("too much text", ["Word. " * 30] * 3, 1009, "text_too_long"),
    ("too much audio", ["This is a fairly long sentence, number one. " * 3] * 2
     + [{"type": "end"}], 1009, "text_too_long"),
    ("control character", ["Hello\x07 there."], 1007, "invalid_text"),
    ("text not a string", [{"type": "text", "text": 5}], 1007, "invalid_text"),
    ("end with no words", ["  ", {"type": "end"}], 1007, "empty_text"),
    ("unknown message", [{"type": "mel", "frames": []}], 1008, "protocol_error"),
    ("idle with no end", ["Hello there. And"], 1008, "text_timeout"),
]


def _espeak_workers(pid: int) -> int:
    """The server's synthesizer processes: at rest, only the spares started ahead."""
    import subprocess

    ps = subprocess.run(["ps", "-eo", "ppid=,args="], capture_output=True, text=True).stdout
    return sum(line.split(None, 1)[0] == str(pid) and "espeak_worker.py" in line
               for line in ps.splitlines())


@pytest.mark.parametrize("case,pieces,code,error", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_named_error_and_frees_everything(srv, case, pieces, code, error):
    async def both():
        good = asyncio.create_task(ws_text_stream(
            srv.ws_url, ["Fine. ", "Thank you.", {"type": "end"}], pause=0.2))
        bad = await ws_text_stream(srv.ws_url, pieces)
        return bad, await good

    bad, good = asyncio.run(both())
    assert bad["close_code"] == code, bad["events"]
    assert events(bad, "error")[-1]["code"] == error
    assert good["close_code"] == 1000 and good["audio"]       # the other stream is unharmed
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = httpx.get(srv.url + "/metrics").text
        workers = _espeak_workers(srv.proc.pid)
        if metric(text, "wavenet_live_streams", model="mel") == 0 and workers <= SPARES:
            break
        time.sleep(0.1)
    assert metric(text, "wavenet_live_streams", model="mel") == 0
    assert workers <= SPARES


@pytest.mark.parametrize("start,field", [({"mel_stream": True}, "mel_stream"),
                                         ({"text": "hi"}, "text"),
                                         ({"speaker": 1}, "speaker")])
def test_start_fields_that_conflict_are_named(srv, start, field):
    out = asyncio.run(ws_text_stream(srv.ws_url, [], start=start))
    assert out["close_code"] == 1007
    assert events(out, "error")[0]["field"] == field
