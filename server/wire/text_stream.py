"""WS /v1/stream's text stream (`"text_stream": true`): text in pieces, as a language model
writes it, spoken a sentence at a time.

Client, after the start message: `{"type": "text", "text": "..."}` pieces, `{"type":
"flush"}` (speak what is buffered now, even mid-sentence), `{"type": "end"}` (speak the
rest; the stream ends after it), `{"type": "cancel"}`. Pieces go through one
`SentenceBuffer`, so a text streamed in gives the sentences of the same text sent whole,
and the same audio, bitwise. Named errors end the stream (and only it): a piece after
`end` (text_after_end), a piece over `text_piece_chars` (text_piece_too_long), more than
`max_input_chars` in all (text_too_long), control characters (invalid_text), no message
for `text_idle_seconds` before `end` (text_timeout), `end` with no words (empty_text).
"""

from __future__ import annotations

import asyncio

from starlette.websockets import WebSocket, WebSocketDisconnect

from server.engine.engine import StreamEnd
from server.engine.spoken_text import SpokenText
from server.timeouts import bounded
from server.wire.ws_protocol import ProtocolError, parse_message
from wavenet_core.text.sentences import SentenceBuffer, control_character

# fields a text stream's start message may not carry: the text and its voice set them
NOT_WITH_TEXT = ("mel", "audio", "text", "seconds", "num_samples", "speaker")


def check_start(req) -> None:
    """A text stream's start message: what it may not carry, named."""
    if req.mel_stream:
        raise ProtocolError(1007, "invalid_request", "mel_stream: give text_stream or "
                            "mel_stream, not both", field="mel_stream")
    for field in NOT_WITH_TEXT:
        if getattr(req, field) is not None:
            raise ProtocolError(1007, "invalid_request", f"{field}: not with text_stream (the "
                                "text pieces and `voice` set the audio)", field=field)


class TextReader:
    """The client's messages during a text stream -> sentences for `spoken`."""

    def __init__(self, ws: WebSocket, spoken: SpokenText, settings):
        self.ws, self.spoken, self.settings = ws, spoken, settings
        self.buffer = SentenceBuffer()
        self.chars = self.sentences = 0
        self.ended = False

    async def run(self, problems: list[ProtocolError]) -> None:
        """Read until the stream ends; a problem is appended to `problems` and ends the
        stream ("protocol_error"), a lost connection ends it ("disconnected")."""
        handle = self.spoken.handle
        try:
            while True:
                data = parse_message(await self._receive(), self.settings.max_body_bytes)
                if data["type"] == "cancel":
                    handle.cancel(StreamEnd.CANCELLED)
                    return
                self._handle(data)
        except ProtocolError as exc:
            problems.append(exc)
            handle.cancel(StreamEnd.PROTOCOL_ERROR)
        except (WebSocketDisconnect, RuntimeError):
            handle.cancel(StreamEnd.DISCONNECTED)

    async def _receive(self) -> dict:
        if self.ended:
            return await self.ws.receive()
        idle = self.settings.text_idle_seconds
        try:
            return await bounded(self.ws.receive(), idle)
        except asyncio.TimeoutError:
            raise ProtocolError(1008, "text_timeout", f"no text for {idle:g} s "
                                "(WAVENET_TEXT_IDLE_SECONDS): send pieces, then "
                                '{"type": "end"}', field="text") from None

    def _handle(self, data: dict) -> None:
        kind = data["type"]
        if kind not in ("text", "flush", "end"):
            raise ProtocolError(1008, "protocol_error", f"unexpected {kind!r} message during "
                                "a text stream; text, flush, end or cancel is allowed",
                                field="type")
        if self.ended:
            raise ProtocolError(1008, "text_after_end", f"a {kind!r} message after "
                                '{"type": "end"}', field="type")
        if kind == "text":
            self._speak(self.buffer.add(self._piece(data.get("text"))))
            return
        self._speak(self.buffer.flush())
        if kind == "end":
            if not self.sentences:
                raise ProtocolError(1007, "empty_text", "text: the stream ended with no words "
                                    "to speak", field="text")
            self.ended = True
            self.spoken.end()

    def _piece(self, text) -> str:
        s = self.settings
        if not isinstance(text, str):
            raise ProtocolError(1007, "invalid_text", "text: must be a string", field="text")
        if len(text) > s.text_piece_chars:
            raise ProtocolError(1009, "text_piece_too_long", f"text: a piece of {len(text)} "
                                f"characters; pieces are limited to {s.text_piece_chars} "
                                "(WAVENET_TEXT_PIECE_CHARS)", field="text")
        self.chars += len(text)
        if self.chars > s.max_input_chars:
            raise ProtocolError(1009, "text_too_long", f"text: more than {s.max_input_chars} "
                                "characters in all (WAVENET_MAX_INPUT_CHARS)", field="text")
        at = control_character(text)
        if at is not None:
            raise ProtocolError(1007, "invalid_text", f"text: control character "
                                f"U+{ord(text[at]):04X} at {at}; send plain text (line "
                                "breaks and tabs are allowed)", field="text")
        return text

    def _speak(self, sentences: list[str]) -> None:
        for sentence in sentences:
            self.sentences += 1
            self.spoken.add(sentence)
