"""WS /v1/stream: one synthesis per connection, audio as binary frames while it is made.

Client: `{"type": "start", ...SynthesisRequest fields, "api_key"?}`, later optionally
`{"type": "cancel"}`. Server: `{"type": "started", request_id, model, sample_rate, format,
encoding, num_samples}`, binary frames of audio in `format` (default pcm: s16le; "wav"
starts with a streaming WAV header; mp3, opus, ... as their encoder gives them) at
`sample_rate`, then `{"type": "done", status, samples, seconds,
time_to_first_audio_ms, real_time_factor}` and close 1000. A cancel ends with "done"
(status "cancelled") too. Errors are `{"type": "error", code, message, field?}` then a
close with one of the codes in `CLOSE_CODES`; how each `StreamEnd` closes is `WS_END`.
With `"mel_stream": true` the client sends the mel after the start message, frame by frame,
then `{"type": "end"}` (`server.wire.ws_protocol`); `started` then has `num_samples: null`.
With `"text_stream": true` it sends text in pieces, `flush` and `end` instead
(`server.wire.text_stream`): the audio is one stream, and `{"type": "words", "words":
[{word, start, end}, ...]}` (seconds of the audio) comes before the audio it describes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from server.auth import identify, peer_address
from server.deps import ServiceDep
from server.engine.engine import StreamEnd
from server.engine.spoken_text import SpokenText
from server.errors import ApiError, field_name
from server.middleware import log_request
from server.timeouts import Watchdog
from server.wire.encoding import Output, encoded_stream, resolve_output
from server.wire.schemas import DoneEvent, ErrorEvent, StartedEvent, SynthesisRequest
from server.wire.text_stream import TextReader, check_start
from server.wire.ws_protocol import ProtocolError, parse_message, read_client

router = APIRouter(prefix="/v1", tags=["synthesis"])
logger = logging.getLogger("wavenet.stream")

START_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0
CLOSE_CODES = {
    1000: "done (or cancelled by the client)",
    1001: "server shutting down",
    1003: "binary frame from the client",
    1007: "invalid JSON or field",
    1008: "unauthorized, or a message out of protocol",
    1009: "message too large",
    1011: "internal error",
    1013: "overloaded or model unavailable, retry later",
    4404: "unknown model",
    4408: "client too slow reading audio (dropped)",
    4410: "mel streamed in too slowly: more than WAVENET_MEL_LAG_SECONDS behind real time",
    4429: "too many streams from this client, or shed for others; retry later",
}
CLOSE_FOR_STATUS = {400: 1007, 401: 1008, 404: 4404, 413: 1009, 422: 1007, 429: 4429,
                    503: 1013}
# how a stream's end reads over the WebSocket: (close code, error code, message); no error
# code means a "done" event (with the status) before the close
WS_END = {
    StreamEnd.DONE: (1000, None, None),
    StreamEnd.CANCELLED: (1000, None, None),
    StreamEnd.DISCONNECTED: (1006, None, None),     # nobody left to tell
    StreamEnd.PROTOCOL_ERROR: (1008, "protocol_error", "message out of protocol"),
    StreamEnd.SHUTDOWN: (1001, "shutting_down", "the server is shutting down"),
    StreamEnd.SLOW_CONSUMER: (4408, "slow_consumer", "dropped: audio was not read in time"),
    StreamEnd.ERROR: (1011, "generation_failed", "generation failed; see the server log"),
    StreamEnd.SHED: (4429, "too_many_requests", "shed from the queue: this client holds more "
                     "than its share of an overloaded model; retry later"),
}


def _request(data: dict, settings, ws: WebSocket) -> tuple[SynthesisRequest, str]:
    """The start message -> (request, client id); the key by header or by `api_key`."""
    if data["type"] != "start":
        raise ProtocolError(1008, "protocol_error", f"expected a start message, got "
                                                    f"{data['type']!r}", field="type")
    fields = {k: v for k, v in data.items() if k not in ("type", "api_key")}
    fields.setdefault("format", "pcm")
    client = ws.scope["state"].get("client")         # KeyGate's, from the header
    if client is None and isinstance(data.get("api_key"), str):
        client = identify(settings, data["api_key"], peer_address(ws.scope))
    if client is None:
        raise ProtocolError(1008, "unauthorized", "a valid API key is required (Authorization "
                                                  "header or `api_key` in the start message)")
    try:
        return SynthesisRequest.model_validate(fields), client
    except ValidationError as exc:
        first = exc.errors()[0]
        field = field_name(first.get("loc", ()))
        raise ProtocolError(1007, "invalid_request", f"{field}: {first.get('msg')}",
                            field=field) from None


@router.websocket("/stream")
async def stream(ws: WebSocket, service: ServiceDep) -> None:
    settings = service.settings
    request_id = ws.scope["state"]["request_id"]
    started = time.perf_counter()
    log = {"event": "request", "request_id": request_id, "path": "/v1/stream",
           "method": "WS"}
    close_code = 1000
    await ws.accept(headers=[(b"x-request-id", request_id.encode())])
    try:
        try:
            message = await asyncio.wait_for(ws.receive(), START_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise ProtocolError(1008, "start_timeout", f"no start message within "
                                                       f"{START_TIMEOUT_S:g} s") from None
        req, client = _request(parse_message(message, settings.max_body_bytes), settings, ws)
        spoken = None
        try:
            if req.text_stream:
                check_start(req)
                spoken = await SpokenText.start(
                    service, None, model=req.model, voice=req.voice, speed=req.speed,
                    seed=req.seed, format=req.format, sample_rate=req.sample_rate,
                    request_id=request_id, client=client,
                    max_seconds=settings.max_speech_seconds)
                entry, handle = spoken.entry, spoken.handle
            else:
                entry, handle = await service.submit(req, request_id, client)
        except ApiError as exc:
            raise _protocol_error(exc) from None
        output = resolve_output(req.format, req.sample_rate, entry.config.sample_rate)
        log.update(model=entry.name, num_samples=handle.num_samples, format=req.format,
                   sample_rate=output.rate, **({"text_stream": True} if spoken else {}))
        try:
            close_code = await _run(ws, handle, output, settings, request_id, entry.name,
                                    spoken)
        finally:
            if spoken is not None:
                spoken.cancel()
        log.update(handle.log_fields())
    except ProtocolError as exc:
        close_code = exc.close_code
        log["error"] = exc.error.code
        await _close(ws, close_code, exc.error)
    except WebSocketDisconnect:
        close_code = 1006 if close_code == 1000 else close_code
        log["error"] = "client_disconnected"
    except Exception:             # a bug: the client gets 1011, as HTTP would get a 500
        logger.exception("unhandled error in WS /v1/stream (request %s)", request_id)
        close_code, log["error"] = 1011, "internal_error"
        await _close(ws, 1011, ErrorEvent(code="internal_error",
                                          message="internal server error; see the server log"))
    finally:
        service.metrics.requests.labels("/v1/stream", str(close_code)).inc()
        log.update(status=close_code, duration_ms=round((time.perf_counter() - started) * 1000,
                                                         1))
        log_request(log)


def _protocol_error(exc: ApiError) -> ProtocolError:
    return ProtocolError(CLOSE_FOR_STATUS.get(exc.status, 1011), exc.code, exc.message,
                         exc.field)


async def _run(ws: WebSocket, handle, output: Output, settings, request_id: str,
               model: str, spoken: SpokenText | None = None) -> int:
    """Stream one handle to the client (with a text stream's words before the audio they
    describe); returns the close code used."""
    problem: list[ProtocolError] = []
    try:
        await ws.send_text(StartedEvent(request_id=request_id, model=model,
                                        sample_rate=output.rate, format=output.format,
                                        encoding=output.spec.encoding,
                                        num_samples=output.samples(handle.num_samples))
                           .model_dump_json())
    except BaseException as exc:
        handle.cancel(StreamEnd.DISCONNECTED)    # gone before its stream started: free the slot now
        if isinstance(exc, (RuntimeError, OSError)):
            raise WebSocketDisconnect(1006) from None
        raise

    reader = asyncio.create_task(read_client(ws, handle, settings, problem) if spoken is None
                                 else TextReader(ws, spoken, settings).run(problem))
    audio = encoded_stream(handle, output)
    watch, limit = Watchdog(), settings.slow_client_seconds
    try:
        async for chunk in audio:
            # a client that stops reading blocks this send (TCP flow control)
            words = spoken.take_words() if spoken is not None else None
            if words:
                await watch.bounded(ws.send_text(words_event(words)), limit)
            await watch.bounded(ws.send_bytes(chunk), limit)
    except asyncio.TimeoutError:
        handle.cancel(StreamEnd.SLOW_CONSUMER)
    except (WebSocketDisconnect, RuntimeError, OSError):
        handle.cancel(StreamEnd.DISCONNECTED)
        raise WebSocketDisconnect(1006) from None
    finally:
        watch.close()
        await audio.aclose()          # the encoder and resampler go now, however it ended
        if not handle.finished:
            handle.cancel()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    if handle.status is StreamEnd.DISCONNECTED:
        raise WebSocketDisconnect(1006)
    if problem:
        await _close(ws, problem[0].close_code, problem[0].error)
        return problem[0].close_code
    if spoken is not None and spoken.failure is not None:
        failed = _protocol_error(spoken.failure)
        await _close(ws, failed.close_code, failed.error)
        return failed.close_code
    code, error_code, message = WS_END[handle.status]
    if error_code is not None:
        await _close(ws, code, ErrorEvent(code=error_code, message=message))
        return code
    ttfa, rtf = handle.time_to_first_audio, handle.real_time_factor
    done = DoneEvent(status=handle.status.value, samples=output.samples(handle.samples),
                     seconds=round(handle.samples / output.model_rate, 6),
                     time_to_first_audio_ms=None if ttfa is None else round(ttfa * 1000, 2),
                     real_time_factor=None if rtf is None else round(rtf, 4))
    await _final(ws, done.model_dump_json(), code)
    return code


def words_event(words) -> str:
    return json.dumps({"type": "words", "words": [w.as_dict() for w in words]})


async def _close(ws: WebSocket, code: int, error: ErrorEvent) -> None:
    if ws.application_state != WebSocketState.CONNECTED:
        return
    await _final(ws, error.model_dump_json(exclude_none=True), code, error.code)


async def _final(ws: WebSocket, text: str, code: int, reason: str = "") -> None:
    """Last message and close; bounded in time, as a client may have stopped reading."""
    async def send_and_close():
        await ws.send_text(text)
        await ws.close(code, reason=reason)

    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError, asyncio.TimeoutError):
        await asyncio.wait_for(send_and_close(), CLOSE_TIMEOUT_S)
