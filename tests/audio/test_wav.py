"""mu-law codes round-trip exactly; WAV read/write converts channels, widths and rates."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
import torch

from wavenet_core.audio.mulaw import SILENCE_CODE, mulaw_decode, mulaw_encode, silence_code
from wavenet_core.audio.wav import AudioError, read_wav, wav_bytes, write_wav


def test_every_code_round_trips_numpy_and_torch():
    codes = np.arange(256)
    assert np.array_equal(mulaw_encode(mulaw_decode(codes)), codes)
    t = torch.arange(256)
    assert torch.equal(mulaw_encode(mulaw_decode(t)), t)


def test_mulaw_is_monotonic_bounded_and_accurate():
    x = np.linspace(-1, 1, 10001).astype(np.float32)
    codes = mulaw_encode(x)
    assert codes.min() == 0 and codes.max() == 255 and np.all(np.diff(codes) >= 0)
    assert np.abs(mulaw_decode(codes) - x).max() < 0.04
    assert mulaw_encode(np.array([5.0, -5.0])).tolist() == [255, 0]
    assert SILENCE_CODE == 128 and abs(mulaw_decode(np.array([SILENCE_CODE]))[0]) < 1e-3
    assert silence_code(17) == 8


def test_wav_round_trip(tmp_path):
    audio = (0.5 * np.sin(np.arange(1600) / 10)).astype(np.float32)
    write_wav(tmp_path / "a.wav", audio, 16000)
    back, rate = read_wav(tmp_path / "a.wav")
    assert rate == 16000 and len(back) == 1600
    assert np.abs(back - audio).max() < 1 / 16000
    back2, _ = read_wav(wav_bytes(audio, 16000))
    assert np.array_equal(back, back2)


def _wav(channels, width, rate, frames):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


def test_stereo_is_averaged_and_rates_are_converted():
    left = np.full(4410, 8000, dtype="<i2")
    right = np.full(4410, -4000, dtype="<i2")
    stereo = np.stack([left, right], 1).tobytes()
    audio, rate = read_wav(_wav(2, 2, 44100, stereo), sample_rate=16000)
    assert rate == 16000 and abs(len(audio) - 1600) <= 1
    assert abs(float(np.median(audio)) - 2000 / 32768) < 1e-3


@pytest.mark.parametrize("width", [1, 3, 4])
def test_other_pcm_widths(width):
    frames = {1: bytes([128, 255, 0]), 3: b"\x00\x00\x40" * 3, 4: b"\x00\x00\x00\x40" * 3}[width]
    audio, _ = read_wav(_wav(1, width, 8000, frames))
    assert len(audio) == 3 and np.all(np.abs(audio) <= 1)


def test_not_a_wav_is_a_clear_error():
    with pytest.raises(AudioError, match="not a PCM WAV"):
        read_wav(b"RIFF....nonsense")


@pytest.mark.parametrize("rate", [1, 7999, 192001, 1_000_003])
def test_rates_outside_8_to_192_khz_are_refused_before_resampling(rate):
    with pytest.raises(AudioError, match=f"sample rate {rate} Hz is outside 8000-192000 Hz"):
        read_wav(_wav(1, 2, rate, bytes(200)), sample_rate=16000)


def test_max_seconds_is_checked_on_the_data_before_conversion():
    frames = bytes(2 * 8000 * 3)                       # 3 s at 8 kHz
    with pytest.raises(AudioError, match="3.00 s is longer than the 2 s limit"):
        read_wav(_wav(1, 2, 8000, frames), sample_rate=16000, max_seconds=2)
    audio, _ = read_wav(_wav(1, 2, 8000, frames), sample_rate=16000, max_seconds=3)
    assert len(audio) == 48000
