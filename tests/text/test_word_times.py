"""Word timing from espeak-ng's own events (wavenet_core/text/word_times.py), on the
bundled library's audio: every word once, in order, a number said in several words is one
word, each interval holds speech and the pauses at a comma and a full stop belong to no
word; and the same text gives the same times (one fresh worker per call)."""

from __future__ import annotations

import numpy as np
import pytest

from wavenet_core.text import espeak_lib
from wavenet_core.text.speech import SAMPLE_RATE, Voice, speak, speak_timed
from wavenet_core.text.word_times import Word, from_events

pytestmark = pytest.mark.skipif(not espeak_lib.available(),
                                reason="espeakng-loader (the bundled espeak-ng) is not installed")

VOICE = Voice("us", "espeak-ng", "en-us+f2")
TEXT = "Hello there, my friend. It costs 25 dollars."


def frames_db(audio: np.ndarray, hop: int = 160) -> np.ndarray:
    n = len(audio) // hop
    rms = np.sqrt(np.mean(audio[:n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    return 20 * np.log10(rms / rms.max())


def test_words_are_in_order_and_hold_the_speech():
    audio, words = speak_timed(VOICE, TEXT)
    assert np.array_equal(audio, speak(VOICE, TEXT))          # the same audio as speak()
    assert [w.word for w in words] == ["Hello", "there", "my", "friend", "It", "costs", "25",
                                       "dollars"]
    db = frames_db(audio)
    for w in words:
        assert 0 <= w.start < w.end <= len(audio) / SAMPLE_RATE
        assert db[int(w.start * 100):int(w.end * 100)].max() > -20, w
    for a, b in zip(words, words[1:]):
        assert a.end <= b.start
    # the pauses after "there," and "friend." are between words, and silent
    for name in ("there", "friend"):
        i = [w.word for w in words].index(name)
        gap = words[i + 1].start - words[i].end
        assert gap > 0.05, (words[i], words[i + 1])
    assert speak_timed(VOICE, TEXT)[1] == words               # deterministic


def test_events_to_words():
    """Pieces of one word (a number) merge; a word ends at a clause end before the next."""
    events = [("word", 0, 1, 2), ("word", 100, 4, 2), ("word", 150, 5, 2), ("end", 300),
              ("word", 400, 7, 3)]
    words = from_events("It 25 ten", events, 1000, 500)
    assert words == [Word("It", 0.0, 0.1), Word("25", 0.1, 0.3), Word("ten", 0.4, 0.5)]
    assert Word("a", 1.0, 2.0).moved(3.0, 2.0) == Word("a", 3.5, 4.0)
