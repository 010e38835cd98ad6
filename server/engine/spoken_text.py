"""A long text spoken as one continuous stream, one sentence at a time.

The request is admitted first (its place in the queue, as every request), then the first
sentence is rendered (synthesizer voice -> audio -> log-mel), so a bad voice or text is a
4xx and the first audio is not kept waiting for the rest. The stream's mel is a `MelFeed`,
as for a mel streamed in over the WebSocket; a task renders the following sentences and
appends their frames while the vocoder speaks the earlier ones. Used by /v1/audio/speech
(the whole `input`), the Wyoming server and WS /v1/stream's text stream (text that arrives
in pieces: `start(first=None)` admits the stream before any text). A sentence that fails
later, or a text longer than the limit, ends the stream with an error (the response is cut,
never a short file that looks whole); `failure` names it.

Each sentence's words (the synthesizer's own timing, wavenet_core/text/word_times.py) are
moved to the stream's timeline when its frames are appended: F frames make F * hop samples,
so a sentence starts where the frames before it end, and `speed` divides its times. They
wait in `take_words()` for the transport, which sends them before the audio they describe
(the audio of frames appended now comes later).
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from server.engine.engine import StreamEnd, StreamHandle
from server.engine.prepare import features, speak_text, text_voice
from server.errors import ApiError, invalid
from server.wire.encoding import FORMATS, resolve_output
from server.wire.mel_feed import MelFeedError
from server.wire.schemas import SynthesisRequest
from wavenet_core.audio.mel import stretch_mel
from wavenet_core.text.word_times import Word

log = logging.getLogger("wavenet.text")

PAUSE_S = 0.2          # silence after each sentence (the synthesizer trims its own)


class SpokenText:
    """`await SpokenText.start(...)` -> .entry, .handle; then `add(sentence)`, `end()`."""

    def __init__(self, service, entry, handle: StreamHandle, voice, speed: float,
                 max_seconds: float):
        self.service, self.entry, self.handle = service, entry, handle
        self.voice, self.speed, self.max_seconds = voice, speed, max_seconds
        self.words: list[Word] = []           # every word so far, on the stream's timeline
        self.failure: ApiError | None = None  # why a later sentence ended the stream
        self._frames, self._sent = 0, 0
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._feed(), name=f"text-{handle.id}")

    @classmethod
    async def start(cls, service, first: str | None, *, model: str | None, voice: str | None,
                    speed: float = 1.0, seed: int = 0, format: str = "pcm",
                    sample_rate: int | None = None, preferred_rate: int | None = None,
                    request_id: str, client: str = "", max_seconds: float | None = None
                    ) -> SpokenText:
        """Admit the stream (its mel to come), then render the first sentence into it: a
        bad voice or model is refused before, a text the synthesizer cannot say after.
        `first` None: no text yet (it comes through `add`)."""
        entry = service.get(model)
        if not entry.config.mel_channels:
            raise invalid("text", f"model {entry.name!r} is not a vocoder (no mel "
                                  "conditioning)")
        spoken = text_voice(voice)
        speaker = spoken.name if spoken.name in (entry.speakers or []) else None
        if format in FORMATS:                # else the service refuses it, naming them
            sample_rate = resolve_output(format, sample_rate, entry.config.sample_rate,
                                         preferred_rate).rate
        req = SynthesisRequest(model=entry.name, mel_stream=True, seed=seed, speaker=speaker,
                               format=format, sample_rate=sample_rate)
        entry, handle = await service.submit(req, request_id, client, max_seconds)
        limit = max_seconds or service.settings.max_seconds
        self = cls(service, entry, handle, spoken, speed, limit)
        if first is None:
            return self
        try:
            self._append(*await service.prepare(sentence_mel, spoken, first, entry.config,
                                                speed, limit))
        except BaseException as exc:
            self.cancel()
            handle.cancel()
            if isinstance(exc, MelFeedError):
                raise invalid("text", f"its first sentence is longer than the {limit:g} s "
                                      "limit") from None
            raise
        return self

    def add(self, sentence: str) -> None:
        self._queue.put_nowait(sentence)

    def end(self) -> None:
        self._queue.put_nowait(None)

    def cancel(self) -> None:
        """Stop rendering (the stream itself is the caller's to end)."""
        self._task.cancel()

    def take_words(self) -> list[Word]:
        """The words whose sentences were appended since the last call."""
        new, self._sent = self.words[self._sent:], len(self.words)
        return new

    def _append(self, mel: np.ndarray, words: list[Word]) -> bool:
        feed = self.handle.mel_source
        if feed is None or self.handle.finished:
            return False
        feed.append(mel)
        cfg = self.entry.config
        offset = self._frames * cfg.mel.hop_length / cfg.sample_rate
        self._frames += len(mel)
        self.words.extend(w.moved(offset) for w in words)
        self.handle.wake()
        return True

    async def _feed(self) -> None:
        feed = self.handle.mel_source
        try:
            while (sentence := await self._queue.get()) is not None:
                if self.handle.finished:
                    return
                rendered = await self.service.prepare(sentence_mel, self.voice, sentence,
                                                      self.entry.config, self.speed,
                                                      self.max_seconds)
                if not self._append(*rendered):
                    return
            if feed is not None and not self.handle.finished:
                feed.end()
                self.handle.wake()
        except (ApiError, MelFeedError) as exc:
            log.warning("stream %s: text stopped: %s", self.handle.id, exc)
            self.failure = exc if isinstance(exc, ApiError) else ApiError(
                413, "text_too_long", f"text: renders to more than the {self.max_seconds:g} s "
                                      "limit of one stream", field="text")
            self.handle.cancel(StreamEnd.ERROR)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("stream %s: rendering text failed", self.handle.id)
            self.handle.cancel(StreamEnd.ERROR)


def sentence_mel(voice, sentence: str, cfg, speed: float, max_seconds: float
                 ) -> tuple[np.ndarray, list[Word]]:
    """One sentence's features and words: spoken (its render stops past `max_seconds`), a
    pause after it, analysed with the model's recipe at its rate, stretched by `speed`
    (frame j reads the time j * speed: a word at t is heard at t / speed)."""
    from wavenet_core.text.speech import SAMPLE_RATE

    audio, words = speak_text(voice, sentence, max_seconds, timed=True)
    audio = np.concatenate([audio, np.zeros(int(PAUSE_S * SAMPLE_RATE), audio.dtype)])
    mel = features("text", audio, cfg, SAMPLE_RATE)
    if speed == 1.0:
        return mel, words
    return stretch_mel(mel, speed), [w.moved(speed=speed) for w in words]
