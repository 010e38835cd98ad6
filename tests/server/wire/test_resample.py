"""The output sample rate (server/wire/resample.py): soxr's streaming resampler gives
bitwise the samples of the whole signal however the stream is chunked, as many samples as
`Output.samples` promises, and a sine at the new rate."""

from __future__ import annotations

import numpy as np
import pytest

from server.wire.encoding import Output
from server.wire.resample import StreamResampler, resample_whole

PAIRS = [(16000, 24000), (16000, 8000), (16000, 44100), (16000, 22050), (22050, 48000),
         (24000, 16000), (16000, 11025)]


@pytest.mark.parametrize("in_rate, out_rate", PAIRS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chunked_is_bitwise_the_whole(in_rate, out_rate, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(30011) * 6000).clip(-32768, 32767).astype("<i2").tobytes()
    whole = resample_whole(x, in_rate, out_rate)
    r, parts, i = StreamResampler(in_rate, out_rate), [], 0
    while i < len(x):
        n = 2 * int(rng.choice([1, 7, 16, 512, 4096, int(rng.integers(1, 9000))]))
        parts.append(r.feed(x[i:i + n]))
        i += n
    parts.append(r.finish())
    assert b"".join(parts) == whole
    assert len(whole) // 2 == Output("pcm", out_rate, in_rate).samples(len(x) // 2)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 101, 333, 4097])
@pytest.mark.parametrize("in_rate, out_rate", PAIRS)
def test_sample_count_is_what_the_headers_promise(n, in_rate, out_rate):
    out = resample_whole(np.ones(n, "<i2").tobytes(), in_rate, out_rate)
    assert len(out) // 2 == Output("pcm", out_rate, in_rate).samples(n)


@pytest.mark.parametrize("out_rate", [8000, 24000, 44100, 48000])
def test_a_sine_comes_out_the_same_sine_at_the_new_rate(out_rate):
    f, seconds = 1000.0, 1.0
    x = np.sin(2 * np.pi * f * np.arange(int(16000 * seconds)) / 16000) * 16000
    y = np.frombuffer(resample_whole(x.astype("<i2").tobytes(), 16000, out_rate), "<i2")
    want = np.sin(2 * np.pi * f * np.arange(len(y)) / out_rate) * 16000
    mid = slice(len(y) // 10, -len(y) // 10)            # away from the filter's edges
    err = y[mid] - want[mid]
    assert 10 * np.log10(np.sum(want[mid] ** 2) / np.sum(err ** 2)) > 60
