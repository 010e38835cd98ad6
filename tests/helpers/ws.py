"""WebSocket clients for the tests and benchmarks: one whole stream, a mel or text streamed
in, or a stream's error and close."""

from __future__ import annotations

import asyncio
import json

import websockets


async def read_to_end(ws, out: dict) -> None:
    """Audio into out["audio"], each event under its type, until the server closes."""
    try:
        async for message in ws:
            if isinstance(message, bytes):
                out["audio"] += message
            else:
                event = json.loads(message)
                out[event["type"]] = event
    except websockets.ConnectionClosedError:
        pass


def empty_result() -> dict:
    return {"audio": b"", "done": None, "error": None, "started": None}


async def ws_synthesize(url: str, start: dict, *, headers=None) -> dict:
    """Run one stream to its end -> {"started", "audio", "done", "close_code", "error"}."""
    out = empty_result()
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", **start}))
        await read_to_end(ws, out)
        out["close_code"] = ws.close_code
    return out


async def ws_mel_stream(url: str, start: dict, pieces, *, pause: float = 0.0,
                        timeout: float = 60.0) -> dict:
    """Stream a mel in: the start message, then each piece (bytes or a JSON-able dict),
    `pause` seconds apart, then read to the end (at most `timeout` s) -> as `ws_synthesize`."""
    out = empty_result()
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "mel_stream": True, **start}))
        await _send_then_read(ws, pieces, pause, timeout, read_to_end(ws, out))
        out["close_code"] = ws.close_code
    return out


async def _send_then_read(ws, messages, pause: float, timeout: float, reader) -> None:
    """Send each message (bytes, str or a JSON-able dict) `pause` s apart while `reader`
    reads, then wait for it (at most `timeout` s); a server that closes early ends sending."""
    reading = asyncio.create_task(reader)
    try:
        for message in messages:
            await ws.send(message if isinstance(message, (bytes, str)) else json.dumps(message))
            if pause:
                await asyncio.sleep(pause)
    except websockets.ConnectionClosed:
        pass
    await asyncio.wait_for(reading, timeout)


async def read_error(ws) -> tuple[dict | None, int]:
    """Read a WebSocket to its end -> (the last error event or None, the close code)."""
    error = None
    try:
        async for message in ws:
            if isinstance(message, str) and json.loads(message)["type"] == "error":
                error = json.loads(message)
    except websockets.ConnectionClosedError:
        pass
    return error, ws.close_code


async def ws_error(url: str, first, then=None) -> tuple[dict | None, int]:
    async with websockets.connect(url) as ws:
        await ws.send(first)
        if then is not None:
            await ws.recv()
            await ws.send(then)
        return await read_error(ws)


def ws_audio_before_end(url: str, model: str, frames: bytes, final_samples: int,
                        quiet: float = 0.5) -> tuple[bytes, dict]:
    """Start a mel stream, send `frames`, read audio until `final_samples` samples came,
    check nothing more comes for `quiet` seconds (the rest waits for lookahead), then
    end the stream -> (all audio, the final message)."""
    import pytest

    async def scenario():
        async with websockets.connect(url, max_size=None) as ws:
            await ws.send(json.dumps({"type": "start", "model": model, "mel_stream": True}))
            assert json.loads(await ws.recv())["type"] == "started"
            await ws.send(frames)
            audio = b""
            while len(audio) < 2 * final_samples:
                audio += await asyncio.wait_for(ws.recv(), 10)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), quiet)
            await ws.send(json.dumps({"type": "end"}))
            done = None
            async for message in ws:
                if isinstance(message, bytes):
                    audio += message
                else:
                    done = json.loads(message)
            return audio, done

    return asyncio.run(scenario())


def ws_whole_mel(url: str, start: dict, mel, hop: int) -> dict:
    """Synthesize the whole `mel` in one request (the reference a streamed mel must equal)."""
    whole = asyncio.run(ws_synthesize(url, {**start, "mel": mel.tolist()}))
    assert whole["done"]["status"] == "done" and len(whole["audio"]) == 2 * len(mel) * hop
    return whole


async def ws_text_stream(url: str, pieces: list, *, start: dict | None = None,
                         pause: float = 0.0, timeout: float = 90.0) -> dict:
    """Start a text stream, send `pieces` (str: a text piece; dict: a message), read to the
    end -> {"audio", "events" (in order, audio bytes seen before each), "close_code"}."""
    out = {"audio": b"", "events": [], "close_code": None}

    async def read(ws):
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    out["audio"] += message
                else:
                    out["events"].append((len(out["audio"]), json.loads(message)))
        except websockets.ConnectionClosedError:
            pass

    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "text_stream": True, "model": "mel",
                                  "format": "pcm", **(start or {})}))
        messages = ({"type": "text", "text": p} if isinstance(p, str) else p for p in pieces)
        await _send_then_read(ws, messages, pause, timeout, read(ws))
        out["close_code"] = ws.close_code
    return out
