"""One PyAV container and encoder for one response (server/wire/encoding.py says which
formats and why one per response).

A stream's container writes to a `_Sink` that is not seekable: its bytes are taken as they
come. A whole file's writes to a seekable `_File`, so the muxer completes its header at the
end (FLAC's length and MD5, mp3's LAME tag).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np


class _Sink:
    """A stream's output file (not seekable): collects what the muxer writes until taken."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.total = 0

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        self.total += len(data)
        return len(data)

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out

    def clear(self) -> None:
        self.parts.clear()


class _File(io.BytesIO):
    """A whole file's output (seekable): its bytes are taken once, at the end."""

    total = 0

    def take(self) -> bytes:
        return b""

    def clear(self) -> None:
        self.seek(0)
        self.truncate()


class AvEncoder:
    """One PyAV container and encoder. PyAV re-frames the input to the codec's frame size,
    so where the chunks break never changes a byte."""

    def __init__(self, spec, rate: int, whole: bool = False):
        import av

        self._av, self.rate, self._pts = av, rate, 0
        self._sink = _File() if whole else _Sink()
        options = {"flush_packets": "1", **spec.options}
        if whole:
            options.pop("write_xing", None)
        self._box = av.open(self._sink, "w", format=spec.container, buffer_size=4096,
                            container_options=options)
        try:
            self._stream = self._box.add_stream(spec.codec, rate=rate, layout="mono",
                                                options=dict(spec.codec_options))
            if spec.bit_rate:
                self._stream.bit_rate = spec.bit_rate
            self._box.start_encoding()       # the header now: what follows it is audio
            self._header_bytes = self._sink.total
        except BaseException:
            self.close()
            raise

    def encode(self, pcm: bytes) -> bytes:
        x = np.frombuffer(pcm, dtype="<i2")
        if x.size:
            frame = self._av.AudioFrame.from_ndarray(x.reshape(1, -1), format="s16",
                                                     layout="mono")
            frame.sample_rate, frame.pts = self.rate, self._pts
            self._pts += x.size
            self._box.mux(self._stream.encode(frame))
        return self._sink.take()

    @property
    def audio_out(self) -> bool:
        """Whether audio has left (bytes beyond the container's header)."""
        return self._sink.total > self._header_bytes

    def finish(self) -> bytes:
        self._box.mux(self._stream.encode(None))
        self._box.close()
        if isinstance(self._sink, _File):
            return self._sink.getvalue()
        return self._sink.take()

    def close(self) -> None:
        with contextlib.suppress(Exception):     # already closed, or closing a broken one
            self._box.close()
        self._sink.clear()
