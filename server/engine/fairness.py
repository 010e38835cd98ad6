"""Fair shares of one model's slots and waiting queue between clients (API keys, or
addresses when no key is set), so that one client's flood costs the others little.

Pure functions over the scheduler's streams (each has `.client`), used by `Scheduler`:
- a client may hold at most `per_client` streams, live and waiting together (429 beyond);
- a free slot goes to the waiting stream whose client holds the fewest live slots (the
  oldest among equals), so a newcomer starts at the next chunk boundary even while a
  flooder has many streams queued;
- a full queue sheds the newest waiting stream of the client queueing the most, when that
  is more than the newcomer's client would then queue: the flooder is turned away first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def held(streams: Iterable, client: str) -> int:
    return sum(1 for s in streams if s.client == client)


def next_admission(waiting: Iterable, live_per_client: Counter):
    """The waiting stream to take the next free slot, or None (none is ready to start)."""
    best, best_live = None, None
    for stream in waiting:                   # oldest first
        if stream.preparing:                 # keeps its place until its job is ready
            continue
        n = live_per_client[stream.client]
        if best is None or n < best_live:
            best, best_live = stream, n
    return best


def shed_victim(waiting: list, newcomer: str):
    """The waiting stream a full queue gives up for a stream of `newcomer`, or None."""
    counts = Counter(s.client for s in waiting)
    if not counts:
        return None
    top, most = max(counts.items(), key=lambda item: item[1])
    if top == newcomer or most <= counts[newcomer] + 1:
        return None
    return next(s for s in reversed(waiting) if s.client == top)


def is_flooding(waiting: list, live: Iterable, client: str) -> bool:
    """True when `client` holds more than an equal share of what the clients present hold:
    its overload answer is 429 (slow down), not 503 (the server is busy)."""
    counts = Counter(s.client for s in waiting) + Counter(s.client for s in live)
    if len(counts) < 2 or client not in counts:
        return False
    return counts[client] > sum(counts.values()) / len(counts)
