"""A Wyoming server (Home Assistant's voice protocol) beside HTTP, on the same engine:
`wavenet serve --wyoming tcp://HOST:PORT` (WAVENET_WYOMING).

- `describe` -> `info`: one TTS program, "wavenet", with the text voices (/v1/models'
  `voices`), and `supports_synthesize_streaming`.
- `synthesize` -> `audio-start`, `audio-chunk`s (PCM s16le mono at the default vocoder's
  rate, as it is made), `audio-stop`. The text is spoken sentence by sentence as one stream
  (`server.engine.spoken_text`), as on /v1/audio/speech.
- Streaming synthesis: `synthesize-start`, `synthesize-chunk`s, `synthesize-stop`: each
  sentence is queued as soon as its text is complete, so the first is heard while the rest
  are still being typed; then `audio-stop` and `synthesize-stopped`. A `synthesize` sent
  during a streaming synthesis (Home Assistant sends both) is ignored, as wyoming-piper does.
- Problems are an `error` event naming them (unknown voice, no vocoder loaded, overloaded);
  the connection stays open.
- The protocol has no authentication: WAVENET_API_KEY does not cover it, so bind it to a
  network you trust (Home Assistant's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from server.engine.engine import StreamEnd
from server.engine.spoken_text import SpokenText
from server.errors import ApiError
from server.timeouts import bounded
from server.wire.encoding import Output, encoded_stream
from wavenet_core.text.sentences import SentenceBuffer, split_sentences

log = logging.getLogger("wavenet.wyoming")

ATTRIBUTION = ("wavenet-server", "https://arxiv.org/abs/1609.03499")


def _language(espeak_voice: str) -> str:
    """espeak-ng's 'en-us+f2' -> 'en_US', as Home Assistant's voices are named."""
    parts = espeak_voice.split("+", 1)[0].split("-")
    if len(parts) > 1 and len(parts[1]) == 2:
        return f"{parts[0]}_{parts[1].upper()}"
    return parts[0]


def info_event(service):
    from wyoming.info import Attribution, Info, TtsProgram, TtsVoice

    from wavenet_core.text.voices import available_voices

    by = Attribution(*ATTRIBUTION)
    vocoder = service.default_vocoder()
    voices = [TtsVoice(name=v.name, description=f"{v.engine} {v.voice} through "
                       f"{vocoder.name if vocoder else 'no vocoder'}", attribution=by,
                       installed=True, version=None, languages=[_language(v.voice)])
              for v in available_voices()] if vocoder is not None else []
    program = TtsProgram(name="wavenet", description="WaveNet vocoder over a text "
                         "synthesizer", attribution=by, installed=True, version="1",
                         voices=voices, supports_synthesize_streaming=True)
    return Info(tts=[program]).event()


class Handler:
    """One client connection: reads events, answers each (wyoming's AsyncEventHandler)."""

    def __init__(self, service, reader, writer):
        from wyoming.server import AsyncEventHandler

        outer = self

        class _Events(AsyncEventHandler):
            async def handle_event(self, event) -> bool:
                return await outer.handle_event(event)

            async def disconnect(self) -> None:
                await outer.disconnect()

        self.service, self.events = service, _Events(reader, writer)
        self._stream: SpokenText | None = None      # the streaming synthesis, if any
        self._buffer: SentenceBuffer | None = None
        self._chars = 0                             # characters in this streaming synthesis
        self._voice: str | None = None
        self._sender: asyncio.Task | None = None

    async def handle_event(self, event) -> bool:
        from wyoming.info import Describe
        from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

        if Describe.is_type(event.type):
            await self.events.write_event(info_event(self.service))
        elif Synthesize.is_type(event.type):
            if self._buffer is None:        # not inside a streaming synthesis
                syn = Synthesize.from_event(event)
                if await self._too_long(len(syn.text)):
                    return True
                await self._speak(split_sentences(syn.text), _voice_name(syn.voice))
        elif SynthesizeStart.is_type(event.type):
            self._buffer, self._chars = SentenceBuffer(), 0
            self._voice = _voice_name(SynthesizeStart.from_event(event).voice)
        elif SynthesizeChunk.is_type(event.type) and self._buffer is not None:
            text = SynthesizeChunk.from_event(event).text
            self._chars += len(text)
            if await self._too_long(self._chars):
                await self.disconnect()             # the stream so far ends here
                self._buffer = self._stream = self._sender = None
                return True
            for sentence in self._buffer.add(text):
                await self._queue(sentence)
        elif SynthesizeStop.is_type(event.type) and self._buffer is not None:
            for sentence in self._buffer.flush():
                await self._queue(sentence)
            await self._finish_streaming()
        return True

    async def _too_long(self, chars: int) -> bool:
        limit = self.service.settings.max_input_chars
        if chars > limit:
            await self._error(f"text longer than {limit} characters "
                              "(WAVENET_MAX_INPUT_CHARS)", "text_too_long")
        return chars > limit

    async def _speak(self, sentences: list[str], voice: str | None) -> None:
        """A whole text: start, queue every sentence, send the audio to its end."""
        if not sentences:
            await self._error("no words to speak", "empty_text")
            return
        stream = await self._start(sentences[0], voice)
        if stream is None:
            return
        for sentence in sentences[1:]:
            stream.add(sentence)
        stream.end()
        await self._send_audio(stream)

    async def _queue(self, sentence: str) -> None:
        if self._stream is None:
            self._stream = await self._start(sentence, self._voice)
            if self._stream is not None:
                self._sender = asyncio.create_task(self._send_audio(self._stream))
        else:
            self._stream.add(sentence)

    async def _finish_streaming(self) -> None:
        from wyoming.tts import SynthesizeStopped

        stream, sender = self._stream, self._sender
        self._buffer = self._stream = self._sender = None
        if stream is not None:
            stream.end()
            await sender
        await self.events.write_event(SynthesizeStopped().event())

    async def _start(self, first: str, voice: str | None) -> SpokenText | None:
        service = self.service
        vocoder = service.default_vocoder()
        if vocoder is None:
            await self._error("no mel-conditioned model (vocoder) is loaded", "no_vocoder")
            return None
        try:
            return await SpokenText.start(
                service, first, model=vocoder.name, voice=voice, format="pcm",
                request_id=uuid.uuid4().hex, client=self._client(),
                max_seconds=service.settings.max_speech_seconds)
        except ApiError as exc:
            await self._error(exc.message, exc.code)
            return None

    def _client(self) -> str:
        """Fairness and the per-client cap count a Wyoming peer by its address, as HTTP's."""
        peer = self.events.writer.get_extra_info("peername")
        return f"addr:{peer[0]}" if peer else "addr:wyoming"

    async def _send_audio(self, stream: SpokenText) -> None:
        from wyoming.audio import AudioChunk, AudioStart, AudioStop

        handle, rate = stream.handle, stream.entry.config.sample_rate
        fmt = dict(rate=rate, width=2, channels=1)
        audio = encoded_stream(handle, Output("pcm", rate, rate))
        try:
            await self.events.write_event(AudioStart(**fmt).event())
            async for chunk in audio:
                await bounded(self.events.write_event(AudioChunk(audio=chunk, **fmt)
                                                      .event()),
                              self.service.settings.slow_client_seconds)
            if handle.status is not StreamEnd.DONE:
                await self._error(f"the audio stopped early ({handle.status})",
                                  str(handle.status))
            await self.events.write_event(AudioStop().event())
        finally:
            await audio.aclose()
            stream.cancel()
            if not handle.finished:
                handle.cancel()

    async def _error(self, text: str, code: str) -> None:
        from wyoming.error import Error

        log.info("wyoming: %s (%s)", text, code)
        await self.events.write_event(Error(text=text, code=code).event())

    async def disconnect(self) -> None:
        """The client left: stop its stream, if one is running."""
        if self._stream is not None:
            self._stream.cancel()
            self._stream.handle.cancel()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(BaseException):
                await self._sender


def _voice_name(voice) -> str | None:
    return voice.name if voice is not None else None


class WyomingServer:
    """Started and stopped by the app's lifespan, on its event loop."""

    def __init__(self, service, uri: str):
        from wyoming.server import AsyncServer

        self.service, self.uri = service, uri
        self.server = AsyncServer.from_uri(uri)

    async def start(self) -> None:
        await self.server.start(lambda r, w: Handler(self.service, r, w).events)
        log.info("Wyoming server on %s", self.uri)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.server.stop()
