"""Choosing between group and split mode (docs/cpu-kernel.md, "Threads"): split mode for
calls with fewer slots than threads, and for any call on a model whose weights overflow a
core's L2 (each core then streams its share of the weights, not all of them); `auto`
measures both ways.
"""

from __future__ import annotations

import math
from pathlib import Path


def cache_sizes() -> dict[str, int]:
    """{'L1': bytes, 'L2': bytes, 'L3': bytes} of cpu0's data/unified caches (sysfs);
    common defaults where the OS does not say."""
    sizes = {"L1": 32 << 10, "L2": 1 << 20, "L3": 16 << 20}
    root = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(root.glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            level = int((index / "level").read_text())
            text = (index / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        if kind == "Instruction" or level not in (1, 2, 3):
            continue
        unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1], 1)
        sizes[f"L{level}"] = int(text.rstrip("KMG")) * unit
    return sizes


class SplitChoice:
    """Split mode pays only when the team's cores are free, near each other and the handoff
    is cheap: with another busy process on one of two cores, one stream split over both ran
    at half the speed of one thread; on the AMD EPYC the same team made 90,000 samples/s in
    some minutes and 48,000 in others (the host moved the vCPUs apart); in a server,
    handing each call to the partner thread waits for the GIL, which the event loop may hold
    for up to the interpreter's switch interval (5 ms), so short chunks lose. So for calls
    with fewer slots than threads ("auto") the backend measures both ways and uses the
    faster: each mode's samples/s as a moving average, and now and then a call in the other
    mode to notice when things change. That call's rate replaces the other mode's old
    estimate (a moving average over samples minutes apart would take several wins to
    switch back), and the next one comes as often as a 2% cost allows: a mode 1.5x slower
    is retried every 25th call, one 100x slower every 4,950th (at least every 8th, at most
    every 16,384th). Both modes give bitwise the same samples, so switching is free."""

    FIRST_EXPLORE = 8
    LAST_EXPLORE = 1 << 14
    EXPLORE_BUDGET = 0.02        # the expected slowdown that exploring may cost

    def __init__(self):
        self.rate: dict[int, float] = {}
        self.explore_every = self.FIRST_EXPLORE
        self.since_explore = 0
        self.exploring: int | None = None

    def pick(self, team: int) -> int:
        for parts in (team, 1):
            if parts not in self.rate:
                return parts
        best = max(self.rate, key=self.rate.get)
        self.since_explore += 1
        if self.since_explore >= self.explore_every:
            self.since_explore = 0
            self.exploring = 1 if best == team else team
            return self.exploring
        return best

    def observe(self, parts: int, samples_per_s: float) -> None:
        old = self.rate.get(parts)
        explored = self.exploring == parts
        if old is None or explored:
            self.rate[parts] = samples_per_s
        else:
            self.rate[parts] = 0.7 * old + 0.3 * samples_per_s
        if explored:
            self.exploring = None
            best = max(self.rate.values())
            slower = best / max(self.rate[parts], 1e-9) - 1
            every = math.ceil(slower / self.EXPLORE_BUDGET) if slower > 0 else 0
            self.explore_every = min(max(every, self.FIRST_EXPLORE), self.LAST_EXPLORE)


class SplitChoices:
    """One SplitChoice per call length (steps) and number of slots, both in powers of two.
    Which mode wins depends on them: a split call pays a fixed handoff to the partner
    thread, so short calls favour one thread and long ones the team. One average over both
    misled: a 16-step warm-up call measured the team at a fraction of its speed, and one
    stream on two cores then ran on one thread at 69,000 samples/s where the team made
    91,000 (AMD EPYC, config B, bf16). With many slots, group mode reads every weight once
    per thread and the team once in all, so the answer changes with the slots too."""

    def __init__(self):
        self._by_shape: dict[tuple[int, int], SplitChoice] = {}

    def for_call(self, num_steps: int, num_slots: int = 1) -> SplitChoice:
        key = (max(1, num_steps).bit_length(), max(1, num_slots).bit_length())
        return self._by_shape.setdefault(key, SplitChoice())
