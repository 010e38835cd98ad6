"""Text into sentences, so a long text can be spoken one sentence at a time: the first is
heard while the rest are still being rendered.

A sentence ends at . ! ? or an ellipsis followed by a space, or at a line break; one
longer than `max_chars` is cut at its last comma, semicolon or colon (else its last space)
before the limit, so no piece keeps the listener waiting.
"""

from __future__ import annotations

import re

MAX_CHARS = 250
_END = re.compile(r"(?<=[.!?\u2026])[\"')\]\u201d\u2019]*\s+|\s*\n\s*")
_SOFT = re.compile(r"[,;:]\s")


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def control_character(text: str) -> int | None:
    """The index of the first control character in `text` (line breaks and tabs are
    allowed), or None: a synthesizer reads them as commands or garbage."""
    found = _CONTROL.search(text)
    return None if found is None else found.start()


def split_sentences(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """The sentences of `text`, stripped, none empty, none over `max_chars`."""
    out: list[str] = []
    start = 0
    for match in _END.finditer(text):
        out.extend(_cut(text[start:match.start()] + match.group().rstrip(), max_chars))
        start = match.end()
    out.extend(_cut(text[start:], max_chars))
    return out


def _cut(piece: str, max_chars: int) -> list[str]:
    piece = piece.strip()
    out = []
    while len(piece) > max_chars:
        head = piece[:max_chars]
        soft = [m.end() for m in _SOFT.finditer(head)]
        at = soft[-1] if soft else head.rfind(" ") + 1
        if at <= 0:
            at = max_chars
        out.append(piece[:at].strip())
        piece = piece[at:].strip()
    if piece:
        out.append(piece)
    return out


class SentenceBuffer:
    """Text arriving in pieces (Wyoming's synthesize-chunk) -> whole sentences as they
    complete; `flush()` gives what is left at the end."""

    def __init__(self, max_chars: int = MAX_CHARS):
        self.max_chars, self._text = max_chars, ""

    def add(self, text: str) -> list[str]:
        self._text += text
        ends = [m.end() for m in _END.finditer(self._text)]
        cut = ends[-1] if ends else 0
        out, rest = split_sentences(self._text[:cut], self.max_chars), self._text[cut:]
        if len(rest) > self.max_chars:     # a long run with no sentence end: its full pieces
            pieces = _cut(rest, self.max_chars)
            out, rest = out + pieces[:-1], pieces[-1]
        self._text = rest
        return out

    def flush(self) -> list[str]:
        rest, self._text = self._text, ""
        return split_sentences(rest, self.max_chars)
