"""Audio encodings on the wire: PCM s16le mono, raw or in a WAV container.

A whole file gets exact RIFF and data sizes. A stream's length is not known when its
header goes out, so both sizes are 0xFFFFFFFF (the convention ffmpeg, sox and browsers
accept for "until the end of the stream").
"""

from __future__ import annotations

import struct

STREAM_SIZE = 0xFFFFFFFF


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


def media_type(fmt: str) -> str:
    """Raw PCM is little-endian, which audio/L16 (big-endian by RFC 2586) is not: it goes out
    as octet-stream, its layout in the X-Audio-Encoding and X-Sample-Rate headers."""
    return "audio/wav" if fmt == "wav" else "application/octet-stream"


def encode_whole(fmt: str, pcm: bytes, sample_rate: int) -> bytes:
    if fmt == "wav":
        return wav_header(sample_rate, len(pcm) // 2) + pcm
    return pcm


async def encoded_stream(chunks, fmt: str, sample_rate: int):
    """PCM chunks -> the bytes on the wire: a WAV stream's header goes out with the first
    chunk (or alone, if the stream ends before any audio)."""
    header = wav_header(sample_rate) if fmt == "wav" else b""
    async for chunk in chunks:
        yield header + chunk
        header = b""
    if header:
        yield header
