"""Audio on the wire: the formats a client may ask for, at the rate it asks for.

pcm (s16le mono, headerless) and wav are written here. A whole WAV file gets exact RIFF and
data sizes; a streamed one's length is not known when its header goes out, so both sizes
are 0xFFFFFFFF (the convention ffmpeg, sox and browsers accept for "until the end").
mp3, opus (in Ogg), aac (ADTS), flac and ulaw (G.711 mu-law, headerless) are encoded with
PyAV, whose wheels bundle FFmpeg with these encoders. Each response has one container and
one encoder, fed chunk by chunk as the audio is made (a container per chunk would leave
audible gaps): the bytes of a chunk leave as soon as the encoder gives them, and the whole
stream is the same bytes as encoding the whole signal at once.

The output rate (8-48 kHz) is made by `server.wire.resample` before encoding.
"""

from __future__ import annotations

import asyncio
import functools
import struct
import threading
from dataclasses import dataclass, field

from server.engine.engine import StreamEnd
from server.wire.av_encoder import AvEncoder
from server.wire.resample import StreamResampler, resample_whole

STREAM_SIZE = 0xFFFFFFFF
MIN_RATE, MAX_RATE = 8000, 48000
MPEG_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    encoding: str                     # X-Audio-Encoding, and the WebSocket "started" event's
    container: str | None = None      # PyAV muxer; None: written here
    codec: str | None = None
    rates: tuple[int, ...] | None = None     # None: any rate in MIN_RATE..MAX_RATE
    bit_rate: int | None = None
    options: dict = field(default_factory=dict)          # the muxer's
    codec_options: dict = field(default_factory=dict)    # the encoder's
    lossless: bool = True


# Raw PCM is little-endian, which audio/L16 (big-endian by RFC 2586) is not: it goes out as
# octet-stream, its layout in the X-Audio-Encoding and X-Sample-Rate headers.
FORMATS = {f.name: f for f in (
    Format("mp3", "audio/mpeg", "mp3", "mp3", "libmp3lame", MPEG_RATES, 64000,
           {"id3v2_version": "0", "write_xing": "0"}, lossless=False),
    # 10 ms frames, each in its own Ogg page (the muxer's default page is 1 s): the first
    # page leaves with the engine's first chunk (512 samples); bitexact: no random serial
    Format("opus", "audio/ogg", "opus", "ogg", "libopus", (8000, 12000, 16000, 24000, 48000),
           32000, {"page_duration": "10000", "fflags": "+bitexact"},
           codec_options={"frame_duration": "10"}, lossless=False),
    Format("aac", "audio/aac", "aac", "adts", "aac", MPEG_RATES, 64000, lossless=False),
    Format("flac", "audio/flac", "flac", "flac", "flac"),
    Format("wav", "audio/wav", "pcm_s16le"),
    Format("pcm", "application/octet-stream", "pcm_s16le"),
    Format("ulaw", "audio/basic", "pcm_mulaw", "mulaw", "pcm_mulaw"),
)}
ULAW_RATE = 8000


class FormatError(ValueError):
    """A format or rate this server does not write; the message names the ones it does."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def check_output(fmt: str, rate: int | None) -> None:
    """FormatError unless `fmt` at `rate` (None: the default) can be written."""
    spec = FORMATS.get(fmt)
    if spec is None:
        raise FormatError("format", f"{fmt!r} is not supported; use one of "
                                    f"{', '.join(FORMATS)}")
    if rate is None:
        return
    if spec.rates is not None and rate not in spec.rates:
        raise FormatError("sample_rate", f"{rate} Hz is not supported for {fmt}; use one of "
                                         f"{', '.join(map(str, spec.rates))}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise FormatError("sample_rate", f"{rate} Hz is not supported; use {MIN_RATE} to "
                                         f"{MAX_RATE} Hz")


@dataclass(frozen=True)
class Output:
    """What one response sends: `format` at `rate`, made from the model's `model_rate`."""

    format: str
    rate: int
    model_rate: int

    @property
    def spec(self) -> Format:
        return FORMATS[self.format]

    def samples(self, model_samples: int | None) -> int | None:
        """How many output samples `model_samples` at the model's rate become."""
        if model_samples is None or self.rate == self.model_rate:
            return model_samples
        # soxr's count: n * rate / model_rate, rounded half up
        return (2 * model_samples * self.rate + self.model_rate) // (2 * self.model_rate)

    def headers(self, model_samples: int | None) -> dict[str, str]:
        out = {"X-Sample-Rate": str(self.rate), "X-Audio-Encoding": self.spec.encoding}
        if model_samples is not None:
            out["X-Audio-Samples"] = str(self.samples(model_samples))
        return out

    def open(self) -> AudioOutput:
        return AudioOutput(self)

    @property
    def first_samples(self) -> int:
        """Samples at the model's rate this output takes in before its first audio bytes
        leave (an mp3 frame and LAME's look-ahead, soxr's filter...): the engine makes at
        least these in a stream's first step."""
        return _first_samples(self)

    def whole(self, pcm: bytes) -> bytes:
        """A whole signal at the model's rate -> the complete file. Its container is written
        to a seekable buffer, so its headers are complete: FLAC's STREAMINFO has the length
        and MD5, an mp3 has its LAME tag (decoders then drop the encoder's delay)."""
        pcm = resample_whole(pcm, self.model_rate, self.rate)
        if self.format == "wav":
            return wav_header(self.rate, len(pcm) // 2) + pcm
        if self.spec.container is None:
            return pcm
        encoder = AvEncoder(self.spec, self.rate, whole=True)
        try:
            return encoder.encode(pcm) + encoder.finish()
        finally:
            encoder.close()


def resolve_output(fmt: str, rate: int | None, model_rate: int,
                   preferred: int | None = None) -> Output:
    """The output for a request (checked with `check_output`): the rate asked for, else
    ulaw's 8 kHz, else `preferred` (OpenAI's 24 kHz on /v1/audio/speech), else the model's,
    else (a rate the codec does not take) the codec's next rate up."""
    if rate is None:
        spec = FORMATS[fmt]
        rate = ULAW_RATE if fmt == "ulaw" else preferred or model_rate
        if spec.rates is not None and rate not in spec.rates:
            rate = min((r for r in spec.rates if r >= rate), default=spec.rates[-1])
    return Output(fmt, rate, model_rate)


@functools.cache
def _first_samples(output: Output) -> int:
    """Measured once per output kind: silence fed 32 samples at a time until audio leaves."""
    if output.rate == output.model_rate and output.spec.container is None:
        return 1                                 # pcm and wav: each sample as it comes
    out, fed = output.open(), 0
    try:
        while not out.audio_out and fed < output.model_rate:
            out.feed(bytes(64))
            fed += 32
    finally:
        out.close()
    return fed


class AudioOutput:
    """One response's audio: PCM s16le at the model's rate in, the format's bytes out.
    `close()` frees the resampler and the encoder whether or not the stream finished;
    `AudioOutput.live` counts the open ones (the /metrics gauge wavenet_audio_encoders).
    Calls hold a lock: a stream encodes on a worker thread while the event loop may close
    it (the client left), and FFmpeg's encoder must not be freed under a running call."""

    live = 0

    def __init__(self, output: Output):
        self._lock = threading.Lock()
        self.output = output
        spec = output.spec
        self._resampler = (StreamResampler(output.model_rate, output.rate)
                           if output.rate != output.model_rate else None)
        self._encoder = AvEncoder(spec, output.rate) if spec.container else None
        self._header = wav_header(output.rate) if spec.name == "wav" else b""
        self._open = True
        self.audio_out = False      # whether any audio (not just a header) has left
        AudioOutput.live += 1

    @property
    def costly(self) -> bool:
        """Whether feeding it is real work (an encoder or a resampler), worth a thread."""
        return self._encoder is not None or self._resampler is not None

    def feed(self, pcm: bytes) -> bytes:
        with self._lock:
            if not self._open:
                return b""
            if self._resampler is not None:
                pcm = self._resampler.feed(pcm)
            return self.feed_resampled(pcm)

    def feed_resampled(self, pcm: bytes) -> bytes:
        head, self._header = self._header, b""
        if self._encoder is None:
            self.audio_out = self.audio_out or bool(pcm)
            return head + pcm
        out = self._encoder.encode(pcm)
        self.audio_out = self.audio_out or self._encoder.audio_out
        return out

    def finish(self) -> bytes:
        """The rest of the stream: the resampler's tail, the encoder's last packets."""
        with self._lock:
            if not self._open:
                return b""
            tail = self._resampler.finish() if self._resampler is not None else b""
            out = self.feed_resampled(tail) if tail or self._header else b""
            if self._encoder is not None:
                out += self._encoder.finish()
            return out

    def close(self) -> None:
        with self._lock:
            if not self._open:
                return
            self._open = False
            AudioOutput.live -= 1
            if self._resampler is not None:
                self._resampler.close()
            if self._encoder is not None:
                self._encoder.close()


def wav_header(sample_rate: int, num_samples: int | None = None) -> bytes:
    """44-byte PCM s16le mono header; `num_samples` None means a stream of unknown length."""
    if num_samples is None:
        riff_size = data_size = STREAM_SIZE
    else:
        data_size = 2 * int(num_samples)
        riff_size = 36 + data_size
    return (b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
            + b"data" + struct.pack("<I", data_size))


async def encoded_stream(chunks, output: Output):
    """PCM chunks -> the bytes on the wire, each chunk's as soon as it is encoded. The end
    of the stream (the encoder's last packets) goes out only when the audio is complete;
    the encoder is closed however the stream ends. Encoding and resampling run on a worker
    thread (PyAV and soxr release the GIL), so the event loop starts the engine's next step
    meanwhile instead of after every stream's chunk is encoded."""
    out = output.open()
    costly = out.costly           # else called here: no coroutine per chunk (pcm: a copy)
    try:
        async for chunk in chunks:
            data = await asyncio.to_thread(out.feed, chunk) if costly else out.feed(chunk)
            if data:
                yield data
        if getattr(chunks, "status", StreamEnd.DONE) is StreamEnd.DONE:
            tail = await asyncio.to_thread(out.finish) if costly else out.finish()
            if tail:
                yield tail
    finally:
        out.close()          # waits for a call still running on its thread (the lock)
