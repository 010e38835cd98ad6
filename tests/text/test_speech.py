"""The text front end: espeak-ng from the espeakng-loader wheel (no system package), the
system programs where present, and the same audio for the same text."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from wavenet_core.text import espeak_lib
from wavenet_core.text.speech import (
    SAMPLE_RATE,
    SpeechError,
    Voice,
    _espeak_options,
    bundled,
    speak,
)
from wavenet_core.text.voices import SERVED_VOICES as VOICES
from wavenet_core.text.voices import available_voices

needs_wheel = pytest.mark.skipif(not espeak_lib.available(),
                                 reason="the espeakng-loader wheel is missing")
US_F2 = next(v for v in VOICES if v.name == "espeak-us-f2")
TEXT = "Hello there, this is a WaveNet."


def test_espeak_flags_become_library_parameters():
    assert _espeak_options(("-s", "160", "-p", "60")) == {"rate": 160, "pitch": 60}
    assert _espeak_options(("-s", "165")) == {"rate": 165}
    assert _espeak_options(()) == {}


@needs_wheel
def test_the_wheel_gives_every_espeak_voice():
    espeak = [v for v in VOICES if v.engine == "espeak-ng"]
    assert all(bundled(v) for v in espeak)
    assert [v for v in available_voices() if v.engine == "espeak-ng"] == espeak
    assert not espeak_lib.has_voice("en-us+no-such-variant")
    assert not espeak_lib.has_voice("xx-no-such-language")


@needs_wheel
def test_bundled_speech_is_speech_and_the_same_every_time():
    first, second = speak(US_F2, TEXT), speak(US_F2, TEXT)
    assert np.array_equal(first, second)
    seconds = len(first) / SAMPLE_RATE
    assert 1.0 < seconds < 4.0 and 0.85 < np.abs(first).max() <= 0.9 + 1e-6
    slower = speak(Voice("slow", "espeak-ng", "en-us+f2", ("-s", "80")), TEXT)
    assert len(slower) > 1.5 * len(first)            # the rate flag reaches the library


@needs_wheel
def test_an_unknown_bundled_voice_is_a_speech_error():
    with pytest.raises(SpeechError, match="no voice"):
        speak(Voice("bad", "espeak-ng", "xx-no-such-language"), TEXT, program=False)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng program here")
def test_the_espeak_program_path_still_works():
    audio = speak(US_F2, TEXT, program=True)
    assert 1.0 < len(audio) / SAMPLE_RATE < 4.0
    if espeak_lib.available():        # both render the same sentence at about the same pace
        assert 0.7 < len(audio) / len(speak(US_F2, TEXT)) < 1.4
