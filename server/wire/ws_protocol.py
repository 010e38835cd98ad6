"""WS /v1/stream's messages from the client: parsing, and the reader that runs beside a stream.

During a stream the client may send `{"type": "cancel"}`; a stream started with
`"mel_stream": true` also takes its mel: binary float32 little-endian messages of
n x mel_channels, or `{"type": "mel", "frames": [[...], ...]}`, then `{"type": "end"}`.
Anything else, or bad frames, ends that stream (and only it) with a `ProtocolError`.
"""

from __future__ import annotations

import asyncio
import json
import time

from starlette.websockets import WebSocket, WebSocketDisconnect

from server.engine.engine import StreamEnd, StreamHandle
from server.timeouts import Watchdog
from server.wire.mel_feed import MelFeedError
from server.wire.schemas import ErrorEvent


class ProtocolError(Exception):
    def __init__(self, close_code: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.close_code, self.error = close_code, ErrorEvent(code=code, message=message,
                                                             field=field)


def parse_message(message: dict, max_bytes: int) -> dict:
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    if message.get("text") is None:
        raise ProtocolError(1003, "unsupported_data", "send JSON text messages, not binary")
    if len(message["text"]) > max_bytes:
        raise ProtocolError(1009, "message_too_large", f"messages are limited to {max_bytes} "
                                                       "bytes")
    try:
        data = json.loads(message["text"])
    except json.JSONDecodeError as exc:
        raise ProtocolError(1007, "invalid_json", f"not valid JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:    # too deeply nested, too long a number
        raise ProtocolError(1007, "invalid_json", f"not usable JSON ({type(exc).__name__})"
                            ) from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError(1007, "invalid_request", "type: each message must be a JSON object "
                                                     "with a string `type`", field="type")
    return data


async def _next_message(ws: WebSocket, feed, settings, started: float,
                        watch: Watchdog) -> dict:
    """The client's next message. While a mel streams in it must keep up: a message within
    `mel_idle_seconds`, and never more than `mel_lag_seconds` behind real time (a slot
    must not be held for hours by a frame now and then)."""
    if feed is None or feed.ended:
        return await ws.receive()
    received = feed.count * feed.hop / feed.config.sample_rate
    lag_left = started + received + settings.mel_lag_seconds - time.monotonic()
    wait = min(settings.mel_idle_seconds, max(0.0, lag_left))
    try:
        return await watch.bounded(ws.receive(), wait)
    except asyncio.TimeoutError:
        if wait < settings.mel_idle_seconds:
            raise ProtocolError(4410, "mel_too_slow", f"the mel is more than "
                                f"{settings.mel_lag_seconds:g} s behind real time "
                                f"({received:.2f} s of audio in "
                                f"{time.monotonic() - started:.1f} s; "
                                "WAVENET_MEL_LAG_SECONDS)", field="mel") from None
        raise ProtocolError(1008, "mel_timeout", f"no mel frame for {wait:g} s "
                            "(WAVENET_MEL_IDLE_SECONDS): send frames, then "
                            '{"type": "end"}', field="mel") from None


async def read_client(ws: WebSocket, handle: StreamHandle, settings,
                      problems: list[ProtocolError]) -> None:
    """Read the client's messages until the stream ends; a problem is appended to `problems`
    and ends the stream ("protocol_error"), a lost connection ends it ("disconnected")."""
    feed = handle.mel_source
    started = time.monotonic()
    watch = Watchdog()
    try:
        while True:
            message = await _next_message(ws, feed, settings, started, watch)
            if feed is not None and message.get("bytes") is not None:
                if len(message["bytes"]) > settings.max_body_bytes:
                    raise ProtocolError(1009, "message_too_large", "messages are limited to "
                                        f"{settings.max_body_bytes} bytes")
                feed.append(feed.from_bytes(message["bytes"]))
                handle.fed()
                continue
            data = parse_message(message, settings.max_body_bytes)
            kind = data["type"]
            if kind == "cancel":
                handle.cancel(StreamEnd.CANCELLED)
                return
            if feed is not None and kind == "mel":
                feed.append(feed.from_json(data.get("frames")))
                handle.fed()
                continue
            if feed is not None and kind == "end":
                feed.end()
            else:
                allowed = "mel frames, end or cancel" if feed is not None else "only cancel"
                raise ProtocolError(1008, "protocol_error", f"unexpected {kind!r} message "
                                    f"during a stream; {allowed} is allowed", field="type")
            handle.wake()
    except MelFeedError as exc:
        code, name = (1009, "mel_too_long") if exc.too_long else (1007, "invalid_mel")
        problems.append(ProtocolError(code, name, f"mel: {exc}", field="mel"))
        handle.cancel(StreamEnd.PROTOCOL_ERROR)
    except ProtocolError as exc:
        problems.append(exc)
        handle.cancel(StreamEnd.PROTOCOL_ERROR)
    except (WebSocketDisconnect, RuntimeError):
        handle.cancel(StreamEnd.DISCONNECTED)
    finally:
        watch.close()
