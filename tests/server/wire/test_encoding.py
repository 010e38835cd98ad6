"""server/wire/encoding.py without a server: every format decodes back to the samples it was
given (lossless ones bitwise, lossy ones within their codec's error) with real decoders, one
container per response gives the same bytes however the audio is chunked, the first bytes
leave with the first chunk, and bad formats or rates are refused naming the good ones."""

from __future__ import annotations

import numpy as np
import pytest

from server.wire.encoding import (
    FORMATS,
    AudioOutput,
    FormatError,
    check_output,
    resolve_output,
)
from tests.helpers.decode import best_lag, decode, snr_db

RATE = 16000
# lossy codecs on a voiced, speech-like signal: the least SNR each keeps (measured: mp3 26,
# opus 25, aac 31 dB), with a margin
MIN_SNR_DB = {"mp3": 20.0, "opus": 18.0, "aac": 24.0}


def voiced(seconds: float = 2.0, rate: int = RATE) -> np.ndarray:
    """A gliding 19-harmonic tone under a syllable-rate envelope, peak at half scale."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(140 + 40 * np.sin(2 * np.pi * 1.5 * t)) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 20)) * (0.5 + 0.5 * np.sin(4 * t) ** 2)
    return (x / np.abs(x).max() * 16000).astype("<i2")


def chunked(output, pcm: bytes, rng) -> list[bytes]:
    out, parts, i = output.open(), [], 0
    try:
        while i < len(pcm):
            n = 2 * int(rng.integers(1, 3000))
            parts.append(out.feed(pcm[i:i + n]))
            i += n
        parts.append(out.finish())
    finally:
        out.close()
    return parts


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("rate", [None, 8000, 24000, 48000])
def test_chunked_stream_is_the_whole_encoded_at_once(fmt, rate):
    """One container per response fed chunk by chunk: any chunking, the same bytes."""
    pcm = voiced(0.7).tobytes()
    output = resolve_output(fmt, rate, RATE)
    stream = b"".join(chunked(output, pcm, np.random.default_rng(0)))
    again = b"".join(chunked(output, pcm, np.random.default_rng(1)))
    assert stream == again and len(stream) > 0
    if fmt in ("wav", "pcm", "ulaw", "opus", "aac"):      # no header written at the end
        whole = output.whole(pcm)
        assert stream[44:] == whole[44:] if fmt == "wav" else stream == whole


@pytest.mark.parametrize("fmt", ["wav", "pcm", "flac"])
@pytest.mark.parametrize("whole", [True, False])
def test_lossless_formats_decode_bitwise(fmt, whole):
    x = voiced()
    output = resolve_output(fmt, None, RATE)
    data = output.whole(x.tobytes()) if whole else b"".join(
        chunked(output, x.tobytes(), np.random.default_rng(2)))
    samples, rate = decode(data, fmt, RATE)
    assert rate == RATE and np.array_equal(samples, x)


def test_ulaw_is_g711_within_its_quantisation():
    """Every 16-bit value through the standard's expansion: mu-law keeps each sample within
    1/28 of its value, plus 16 near zero."""
    x = np.arange(-32768, 32768, 3, dtype=np.int64).astype("<i2")
    output = resolve_output("ulaw", None, 8000)
    assert output.rate == 8000
    data = output.whole(x.tobytes())
    assert len(data) == len(x)              # headerless, one byte a sample
    y, _ = decode(data, "ulaw", 8000)
    err = np.abs(y.astype(np.int64) - x)
    assert np.all(err <= np.abs(x.astype(np.int64)) / 28 + 16)


@pytest.mark.parametrize("fmt", list(MIN_SNR_DB))
@pytest.mark.parametrize("whole", [True, False])
def test_lossy_formats_decode_within_the_codecs_error(fmt, whole):
    x = voiced()
    output = resolve_output(fmt, None, RATE)
    data = output.whole(x.tobytes()) if whole else b"".join(
        chunked(output, x.tobytes(), np.random.default_rng(3)))
    y, rate = decode(data, fmt, RATE)
    assert rate == RATE
    lag = best_lag(x, y)
    if whole and fmt == "mp3":
        assert lag == 0 and len(y) == len(x)      # the LAME tag: decoders drop the delay
    if fmt == "opus":
        assert lag == 0                           # Ogg Opus's pre-skip does the same
    assert len(y) >= len(x) + lag
    assert snr_db(x, y, lag) >= MIN_SNR_DB[fmt]


def test_first_bytes_leave_with_the_first_chunk():
    """After a first chunk of 512 samples (the engine's first step), each format has sent
    what its codec can: all of it for pcm and wav; an Opus page; a FLAC frame once 1,152
    samples came; mp3 and aac once their encoder delay (about 1,800 and 2,048 samples) has
    passed; ulaw (at 8 kHz) once soxr's filter has the 1,856 samples it looks ahead."""
    x = voiced(1.0).tobytes()
    first = {}
    for fmt in FORMATS:
        out = resolve_output(fmt, None, RATE).open()
        try:
            sent, fed = 0, 0
            while not sent:
                sent += len(out.feed(x[2 * fed:2 * (fed + 256)]))
                fed += 256
            first[fmt] = fed
        finally:
            out.close()
    assert first["pcm"] == first["wav"] == 256 and first["ulaw"] <= 2048
    assert first["opus"] <= 512
    assert first["flac"] <= 1280 and first["mp3"] <= 2048 and first["aac"] <= 2304


def test_open_outputs_are_counted_and_closed_however_they_end():
    before = AudioOutput.live
    outs = [resolve_output(f, 24000 if f != "ulaw" else None, RATE).open() for f in FORMATS]
    assert AudioOutput.live == before + len(FORMATS)
    for out in outs:
        out.feed(voiced(0.1).tobytes())        # mid-stream: never finished
        out.close()
        out.close()                            # twice is harmless
    assert AudioOutput.live == before


@pytest.mark.parametrize("fmt, rate, field, names", [
    ("ogg", None, "format", "mp3, opus, aac, flac, wav, pcm, ulaw"),
    ("MP3", None, "format", "mp3, opus, aac, flac, wav, pcm, ulaw"),
    ("pcm", 7999, "sample_rate", "8000 to 48000 Hz"),
    ("wav", 48001, "sample_rate", "8000 to 48000 Hz"),
    ("opus", 22050, "sample_rate", "8000, 12000, 16000, 24000, 48000"),
    ("mp3", 20000, "sample_rate", "8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100"),
])
def test_bad_format_or_rate_names_the_supported(fmt, rate, field, names):
    with pytest.raises(FormatError) as info:
        check_output(fmt, rate)
    assert info.value.field == field and names in str(info.value)


def test_default_rates():
    assert resolve_output("pcm", None, 16000).rate == 16000
    assert resolve_output("ulaw", None, 16000).rate == 8000
    assert resolve_output("mp3", None, 16000, preferred=24000).rate == 24000
    assert resolve_output("opus", None, 22050).rate == 24000     # opus has no 22,050
    assert resolve_output("flac", 44100, 16000, preferred=24000).rate == 44100
