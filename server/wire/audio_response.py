"""An HTTP audio response for a stream handle: the whole file, or chunked as it is made, in
the request's format and rate (`server.wire.encoding.Output`), or as OpenAI's server-sent
events (`speech.audio.delta` with base64 audio, then `speech.audio.done` with `usage`).

Headers: X-Request-ID (middleware), X-Sample-Rate (the output's), X-Audio-Samples (the
length asked for, at the output rate; absent while unknown), X-Audio-Encoding, X-Model.
A streamed WAV's header carries 0xFFFFFFFF sizes. A client that disconnects frees its slot
at the next chunk boundary, and its encoder at once. A streamed body that stops short
(failure, slow client, shutdown) is cut, not ended: see `AudioStream`.
Used by POST /v1/synthesize and POST /v1/audio/speech. With a `words` source (a spoken
text's `take_words`), SSE sends `speech.words` events before the audio they describe, and a
whole response is JSON: the audio in base64 and every word (`"timestamps": true`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json

from fastapi import Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from server.engine.engine import StreamEnd, StreamHandle
from server.errors import ApiError
from server.timeouts import bounded
from server.wire.encoding import Output, encoded_stream

SSE_TYPE = "text/event-stream"
AUDIO_TOKENS_PER_S = 50      # `usage.output_tokens` counts 20 ms frames of audio

# how a stream's end reads over HTTP: (status, error code, message); DONE is a 200
HTTP_END = {
    StreamEnd.CANCELLED: (499, "cancelled", "cancelled"),
    StreamEnd.DISCONNECTED: (499, "cancelled", "cancelled"),
    StreamEnd.PROTOCOL_ERROR: (400, "protocol_error", "the request broke the protocol"),
    StreamEnd.SHUTDOWN: (503, "shutting_down", "the server shut down before the audio was "
                         "finished"),
    StreamEnd.ERROR: (500, "generation_failed", "generation failed; see the server log"),
    StreamEnd.SLOW_CONSUMER: (503, "slow_consumer", "dropped: audio was not read in time"),
    StreamEnd.SHED: (429, "too_many_requests", "shed from the queue: this client holds more "
                     "than its share of an overloaded model; retry later"),
}
RETRY_AFTER = {StreamEnd.SHED: {"Retry-After": "2"}, StreamEnd.SHUTDOWN: {"Retry-After": "5"}}


def end_error(status: StreamEnd | None) -> ApiError:
    """The HTTP error for a stream that ended without its audio."""
    status = status or StreamEnd.CANCELLED
    return ApiError(*HTTP_END[status], headers=RETRY_AFTER.get(status))


async def audio_response(request: Request, entry, handle: StreamHandle, output: Output,
                         stream: bool, send_timeout: float, sse_input: str | None = None,
                         words=None) -> Response:
    """The response for `handle`'s audio as `output`, streamed or whole; with `sse_input`
    (the text spoken) as server-sent events; with `words` (a callable giving the words
    since its last call) their timestamps too."""
    request.state.log.update(model=entry.name, num_samples=handle.num_samples,
                             stream=stream, format=output.format, sample_rate=output.rate,
                             **({"sse": True} if sse_input is not None else {}))
    headers = {**output.headers(handle.num_samples), "X-Model": entry.name}
    if sse_input is not None:
        body = _sse_body(_stream_body(request, handle, output), handle, output, sse_input,
                         words)
        return AudioStream(handle, body, send_timeout=send_timeout, media_type=SSE_TYPE,
                           headers={**headers, "Cache-Control": "no-cache"})
    if stream and words is None:
        return AudioStream(handle, _stream_body(request, handle, output),
                           send_timeout=send_timeout,
                           media_type=output.spec.media_type, headers=headers)
    data = await _whole(request, handle, output)
    if words is not None:
        return JSONResponse({"audio": base64.b64encode(data).decode(), "format": output.format,
                             "sample_rate": output.rate,
                             "words": [w.as_dict() for w in words()]}, headers=headers)
    return Response(data, media_type=output.spec.media_type, headers=headers)


async def _whole(request: Request, handle: StreamHandle, output: Output) -> bytes:
    """The whole audio, encoded; an error if the stream ended without it."""
    watcher = asyncio.create_task(_cancel_on_disconnect(request, handle))
    try:
        pcm = b"".join([chunk async for chunk in handle])
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        if not handle.finished:
            handle.cancel()
        request.state.log.update(handle.log_fields())
    if handle.status is not StreamEnd.DONE:
        raise end_error(handle.status)
    return await asyncio.to_thread(output.whole, pcm)     # encoding is CPU work


async def _cancel_on_disconnect(request: Request, handle: StreamHandle) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            handle.cancel()
            return


class AudioStream(StreamingResponse):
    """A chunked response of audio still being made. If the audio stops short (generation
    failed, the client was dropped as too slow, the server shut down) the body is left
    unterminated, so uvicorn closes the connection and the client sees an incomplete
    response, never a complete-looking short file. A chunk the client does not accept
    within `send_timeout` seconds drops the stream ("slow_consumer") the same way."""

    def __init__(self, handle: StreamHandle, body, *, send_timeout: float, **kwargs):
        super().__init__(body, **kwargs)
        self.handle, self.send_timeout = handle, send_timeout

    async def stream_response(self, send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            async for chunk in self.body_iterator:
                await bounded(send({"type": "http.response.body", "body": chunk,
                                    "more_body": True}), self.send_timeout)
        except asyncio.TimeoutError:
            self.handle.cancel(StreamEnd.SLOW_CONSUMER)
            return
        finally:
            await self.body_iterator.aclose()
            if not self.handle.finished:     # the client left, perhaps before any audio
                self.handle.cancel()
        if self.handle.status is StreamEnd.DONE:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _stream_body(request: Request, handle: StreamHandle, output: Output):
    body = encoded_stream(handle, output)
    try:
        async for chunk in body:
            yield chunk
    finally:
        await body.aclose()           # the encoder and resampler go now, however it ended
        if not handle.finished:
            handle.cancel()
        request.state.log.update(handle.log_fields())


def _event(data: dict) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


async def _sse_body(audio, handle: StreamHandle, output: Output, text: str, words=None):
    """OpenAI's speech events around the encoded audio; `done` only when it is complete.
    With `words`, a `speech.words` event before the audio of its words."""
    try:
        async for chunk in audio:
            new = words() if words is not None else None
            if new:
                yield _event({"type": "speech.words", "words": [w.as_dict() for w in new]})
            yield _event({"type": "speech.audio.delta",
                          "audio": base64.b64encode(chunk).decode()})
    finally:
        await audio.aclose()
    if handle.status is StreamEnd.DONE:
        out_tokens = round(handle.samples / output.model_rate * AUDIO_TOKENS_PER_S)
        yield _event({"type": "speech.audio.done",
                      "usage": {"input_tokens": len(text), "output_tokens": out_tokens,
                                "total_tokens": len(text) + out_tokens}})
