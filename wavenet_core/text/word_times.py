"""When each word is spoken, from the synthesizer's own timing (espeak-ng's word events).

espeak-ng reports the sample each word starts at and where each clause ends. A word runs
to the next word or clause end; its edges are then moved in to the speech it holds (the
first and last 10 ms frame within 40 dB of the utterance's loudest, as the trim), so the
pause at a comma or after a sentence belongs to no word. Times are seconds of the audio
they were measured on; `Word.moved` carries them to another timeline (a place in a longer
stream, a `speed`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_S = 0.01
TOP_DB = 40.0


@dataclass(frozen=True)
class Word:
    word: str
    start: float      # seconds
    end: float

    def moved(self, offset: float = 0.0, speed: float = 1.0) -> Word:
        """The same word on a timeline played `speed` times faster, starting at `offset`."""
        return Word(self.word, offset + self.start / speed, offset + self.end / speed)

    def as_dict(self) -> dict:
        return {"word": self.word, "start": round(self.start, 4), "end": round(self.end, 4)}


def from_events(text: str, events: list[tuple], rate: int, length: int) -> list[Word]:
    """espeak_lib's ("word", sample, position, length) and ("end", sample) events of `text`
    -> its words, each to the next word or clause end. A word the library says in several
    pieces (a number: "25" is "twenty five") is one word."""
    spans: list[list[int]] = []           # [start sample, first char, last char + 1]
    for event in events:
        if event[0] != "word":
            continue
        _, sample, position, size = event
        first, last = position - 1, position - 1 + size
        if spans and first < spans[-1][2]:
            spans[-1][2] = max(spans[-1][2], last)
            continue
        spans.append([sample, first, last])
    ends = sorted(e[1] for e in events if e[0] == "end")
    words = []
    for i, (sample, first, last) in enumerate(spans):
        stop = spans[i + 1][0] if i + 1 < len(spans) else length
        stop = min([stop] + [e for e in ends if e > sample])
        word = text[first:last].strip()
        if word and stop > sample:
            words.append(Word(word, sample / rate, min(stop, length) / rate))
    return words


def fit_to_speech(words: list[Word], audio: np.ndarray, rate: int) -> list[Word]:
    """Each word's edges moved in to the loud frames within it; one with none stays."""
    hop = max(1, int(FRAME_S * rate))
    frames = len(audio) // hop
    if frames == 0 or not words:
        return words
    rms = np.sqrt(np.mean(audio[:frames * hop].reshape(frames, hop) ** 2, axis=1) + 1e-12)
    loud = rms >= rms.max() * 10 ** (-TOP_DB / 20)
    out = []
    for w in words:
        a, b = int(w.start * rate) // hop, min(frames, int(w.end * rate) // hop)
        hits = np.nonzero(loud[a:b])[0]
        if hits.size:
            out.append(Word(w.word, float(max(w.start, (a + hits[0]) * hop / rate)),
                            float(min(w.end, (a + hits[-1] + 1) * hop / rate))))
        else:
            out.append(w)
    return out
