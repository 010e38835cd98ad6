"""`wavenet serve --wyoming tcp://...` against the `wyoming` package's own client: describe,
synthesize, and streaming synthesis, on the same engine as HTTP (a real server process)."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers.server import BACKEND, Server, free_port

wyoming = pytest.importorskip("wyoming", reason="wyoming is not installed")

from wyoming.client import AsyncTcpClient  # noqa: E402
from wyoming.info import Describe, Info  # noqa: E402
from wyoming.tts import (  # noqa: E402
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)


@pytest.fixture(scope="module")
def wy(checkpoints, tmp_path_factory):
    port = free_port()
    srv = Server(checkpoints, {"WAVENET_BACKEND": BACKEND},
                 tmp_path_factory.mktemp("wyoming") / "server.log",
                 args=("--wyoming", f"tcp://127.0.0.1:{port}"))
    try:
        srv.wait_ready()
        srv.wyoming_port = port
        yield srv
    finally:
        srv.stop()


async def events_until(client, last: str, timeout: float = 60) -> list:
    out = []
    while True:
        event = await asyncio.wait_for(client.read_event(), timeout)
        assert event is not None, "the server closed the connection"
        out.append(event)
        if event.type in (last, "error"):
            return out


def audio_of(events) -> tuple[list[str], bytes]:
    kinds = [e.type for e in events if e.type != "audio-chunk"]
    return kinds, b"".join(e.payload for e in events if e.type == "audio-chunk")


def run(wy, steps):
    async def main():
        async with AsyncTcpClient("127.0.0.1", wy.wyoming_port) as client:
            return await steps(client)
    return asyncio.run(main())


def test_describe_lists_the_voices(wy, client):
    async def steps(c):
        await c.write_event(Describe().event())
        return Info.from_event(await asyncio.wait_for(c.read_event(), 10))

    info = run(wy, steps)
    tts = info.tts[0]
    voices = client.get("/v1/models").json()["data"]
    assert tts.name == "wavenet" and tts.supports_synthesize_streaming
    assert [v.name for v in tts.voices] == next(m for m in voices if m["name"] == "mel")["voices"]
    assert tts.voices[0].languages and tts.voices[0].languages[0].startswith("en")


def test_synthesize_answers_audio_start_chunks_stop(wy):
    text = "Hello there. How are you today?"

    async def steps(c):
        await c.write_event(Synthesize(text=text, voice=SynthesizeVoice(name="espeak-us-f2"))
                            .event())
        return await events_until(c, "audio-stop")

    events = run(wy, steps)
    kinds, audio = audio_of(events)
    assert kinds == ["audio-start", "audio-stop"]
    start = events[0].data
    assert (start["rate"], start["width"], start["channels"]) == (16000, 2, 1)
    chunks = [e for e in events if e.type == "audio-chunk"]
    assert len(chunks) > 1 and len(audio) > 2 * 16000 * 0.5


def test_streaming_synthesis_speaks_sentence_by_sentence(wy):
    """Home Assistant streams the text in pieces (and also sends a plain `synthesize`,
    which a streaming server ignores); the audio is the pieces' sentences, then
    synthesize-stopped. The same text through `synthesize` gives the same audio."""
    pieces = ["Hello the", "re. How are", " you today? And", " goodbye."]
    full = "".join(pieces)

    async def steps(c):
        await c.write_event(SynthesizeStart(voice=SynthesizeVoice(name="espeak-us-f2"))
                            .event())
        for piece in pieces:
            await c.write_event(SynthesizeChunk(text=piece).event())
        await c.write_event(Synthesize(text=full).event())
        await c.write_event(SynthesizeStop().event())
        streamed = await events_until(c, "synthesize-stopped")
        await c.write_event(Synthesize(text=full, voice=SynthesizeVoice(name="espeak-us-f2"))
                            .event())
        return streamed, await events_until(c, "audio-stop")

    streamed, whole = run(wy, steps)
    kinds, audio = audio_of(streamed)
    assert kinds == ["audio-start", "audio-stop", "synthesize-stopped"]
    assert audio == audio_of(whole)[1] and len(audio) > 0


def test_problems_are_error_events_and_the_connection_stays(wy):
    async def steps(c):
        await c.write_event(Synthesize(text="Hi.", voice=SynthesizeVoice(name="nope")).event())
        bad = await events_until(c, "error")
        await c.write_event(Synthesize(text="Hi there.").event())
        return bad, await events_until(c, "audio-stop")

    bad, good = run(wy, steps)
    assert bad[-1].type == "error" and "unknown voice 'nope'" in bad[-1].data["text"]
    assert audio_of(good)[0] == ["audio-start", "audio-stop"]


def test_text_over_the_input_limit_is_a_named_error(wy):
    """WAVENET_MAX_INPUT_CHARS (4,096) holds for a whole text and a streamed one; the
    connection stays for the next request."""
    async def steps(c):
        await c.write_event(Synthesize(text="Word. " * 700).event())
        whole = await events_until(c, "error")
        await c.write_event(SynthesizeStart().event())
        await c.write_event(SynthesizeChunk(text="Word. " * 400).event())
        await c.write_event(SynthesizeChunk(text="Word. " * 400).event())
        streamed = await events_until(c, "error")
        await c.write_event(Synthesize(text="Hi there.").event())
        return whole, streamed, await events_until(c, "audio-stop")

    whole, streamed, good = run(wy, steps)
    for events in (whole, streamed):
        assert events[-1].type == "error" and events[-1].data["code"] == "text_too_long"
    assert audio_of(good)[0] == ["audio-start", "audio-stop"]
