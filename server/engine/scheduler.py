"""Continuous batching at chunk boundaries: which streams run, in which slot, for how long.

Pure Python (no torch, no asyncio): the engine calls `schedule()` before every step and
`update()` after it. A `Plan` names the slots to free (finished or cancelled streams),
the streams to open (admitted from the waiting queue into free slots) and the streams
that produce samples this step, with the step's length K.

K is chosen from a cost model (seconds per step at each batch size, learned from warm-up
and from every step) so that a step takes about `chunk_target_s`, or `first_target_s`
when it opens new streams: a new request waits at most one step for its slot plus one
short step for its first audio, whatever else is running. Between clients, slots and the
queue are shared fairly (`server.engine.fairness`).

A stream may join the queue before its conditioning is ready (`preparing`, while the service
prepares it): it holds its place, and is admitted to a slot only once it is ready.

Gathering (`gather_s`): streams whose mel streams in at real-time pace get their frames at
scattered moments, one hop apart each. Stepping each as its frame comes would make many
small steps (at 16 streams on two cores, batch 7 at 54 steps a second where one step of 16
each hop would do), and a small batch costs the kernel more per sample, which takes the
cores the next steps need. So while every stream that could run is such a paced stream
and another paced stream waits for its next frame, the step is held for at most `gather_s`
from the moment the first became ready, or until every waiting one has its frame
(docs/performance.md, "The engine's share of the cores"). While a step is held, a frame
calls for a new plan only when it is the last one the step waits for (`frames_came`):
else the hold's time runs it, and the other frames cost no pass of the engine's loop.
"""

from __future__ import annotations

import bisect
import heapq
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from server.engine import fairness

if TYPE_CHECKING:      # for the annotation only: the scheduler itself never looks inside
    from server.engine.prepare import Job


class QueueFull(Exception):
    """The waiting queue is at its limit. `flooding`: the asking client holds more than its
    share (it should slow down: 429), else the server is busy (503)."""

    def __init__(self, flooding: bool = False):
        super().__init__("flooding" if flooding else "queue full")
        self.flooding = flooding


class ClientLimit(Exception):
    """The client already holds its cap of streams (live and waiting) on this model."""


@dataclass(eq=False)
class Stream:
    id: str
    num_samples: int
    job: Job | None = None
    produced: int = 0
    slot: int | None = None
    cancelled: bool = False
    blocked: bool = False     # set by the engine: the consumer's buffer is full
    ready: int | None = None  # set by the engine for a mel streamed in: samples it allows now
    client: str = ""          # who asked (an API key's id, or an address): fairness counts by it
    preparing: bool = False   # queued while its job is being prepared: not admitted yet

    @property
    def ahead(self) -> int:
        """Samples this stream could make now (its conditioning may not have arrived yet).
        Read for every live stream about twice a pass of the engine's loop: no min/max."""
        limit, ready = self.num_samples, self.ready
        if ready is not None and ready < limit:
            limit = ready
        left = limit - self.produced
        return left if left > 0 else 0

    @property
    def remaining(self) -> int:
        return max(0, self.num_samples - self.produced)

    @property
    def done(self) -> bool:
        return self.produced >= self.num_samples


@dataclass
class Plan:
    free: list[int] = field(default_factory=list)      # slots to free first
    open: list[Stream] = field(default_factory=list)   # streams admitted into free slots
    running: list[Stream] = field(default_factory=list)  # streams that make samples now
    chunk_samples: int = 0                             # how many, each


class CostModel:
    """Seconds per generation step by batch size: an exponential moving average per size."""

    def __init__(self, alpha: float = 0.3):
        self.alpha = alpha
        self.sizes: list[int] = []
        self.cost: dict[int, float] = {}

    def observe(self, batch: int, num_steps: int, seconds: float) -> None:
        if batch < 1 or num_steps < 1 or seconds <= 0:
            return
        per_step = seconds / num_steps
        if batch in self.cost:
            self.cost[batch] += self.alpha * (per_step - self.cost[batch])
        else:
            self.cost[batch] = per_step
            bisect.insort(self.sizes, batch)

    def per_step(self, batch: int) -> float | None:
        """Estimated seconds per step; interpolated between known sizes, conservative outside."""
        if not self.sizes:
            return None
        if batch in self.cost:
            return self.cost[batch]
        i = bisect.bisect_left(self.sizes, batch)
        if i == 0:
            return self.cost[self.sizes[0]]
        if i == len(self.sizes):
            top = self.sizes[-1]
            return self.cost[top] * batch / top
        lo, hi = self.sizes[i - 1], self.sizes[i]
        w = (batch - lo) / (hi - lo)
        return self.cost[lo] * (1 - w) + self.cost[hi] * w


class Scheduler:
    def __init__(self, max_slots: int, max_waiting: int, *, chunk_size: int = 4096,
                 first_chunk_size: int = 512, min_chunk_size: int = 16,
                 chunk_target_s: float = 0.04, first_target_s: float = 0.01,
                 per_client: int | None = None, gather_s: float = 0.0, align: int = 1):
        self.max_slots, self.max_waiting = max_slots, max_waiting
        self.per_client = per_client
        self.chunk_size, self.first_chunk_size = chunk_size, min(first_chunk_size, chunk_size)
        self.min_chunk_size = min(min_chunk_size, self.first_chunk_size)
        self.chunk_target_s, self.first_target_s = chunk_target_s, first_target_s
        self.gather_s, self.align = gather_s, align      # align: a mel frame's samples
        self.held_since: float | None = None   # a held step: when its first stream was ready
        self.gathering: set[Stream] = set()    # the paced streams a held step waits for
        self.cost = CostModel()
        self.waiting: deque[Stream] = deque()
        self.live: dict[int, Stream] = {}
        self._free_slots = list(range(max_slots))
        heapq.heapify(self._free_slots)

    # -- admission -----------------------------------------------------------------------
    def add(self, stream: Stream) -> Stream | None:
        """Queue a stream. ClientLimit when its client holds `per_client` streams already;
        QueueFull when the waiting queue (beyond idle slots) is full and no other client's
        stream is to be shed for it. Returns the stream shed, if one was (gone from the
        queue: the caller ends it)."""
        staying = [s for s in self.live.values() if not self._leaving(s)]
        if self.per_client is not None and (fairness.held(staying, stream.client)
                                            + fairness.held(self.waiting, stream.client)
                                            >= self.per_client):
            raise ClientLimit
        shed = None
        if len(self.waiting) >= self.max_waiting + max(0, self.max_slots - len(staying)):
            shed = fairness.shed_victim(list(self.waiting), stream.client)
            if shed is None:
                raise QueueFull(fairness.is_flooding(list(self.waiting), staying,
                                                     stream.client))
            self.cancel(shed)
        self.waiting.append(stream)
        return shed

    def cancel(self, stream: Stream) -> bool:
        """Cancel a stream. True if it was still waiting (gone now); a live one leaves its
        slot at the next `schedule()`."""
        stream.cancelled = True
        if stream.slot is None:
            try:
                self.waiting.remove(stream)
            except ValueError:
                pass
            return True
        return False

    @property
    def num_live(self) -> int:
        return len(self.live)

    @property
    def num_waiting(self) -> int:
        return len(self.waiting)

    @staticmethod
    def _leaving(stream: Stream) -> bool:
        return stream.cancelled or stream.done

    # -- one step ------------------------------------------------------------------------
    def schedule(self, now: float = 0.0) -> Plan | None:
        """The next step's plan, or None when there is nothing to do; `now` (seconds, any
        clock) times a held step (`hold_left`)."""
        plan = Plan()
        for slot in sorted(self.live):
            if self._leaving(self.live[slot]):
                del self.live[slot]
                plan.free.append(slot)
                heapq.heappush(self._free_slots, slot)
        live_per_client = (Counter(s.client for s in self.live.values())
                           if self.waiting and self._free_slots else None)
        while self.waiting and self._free_slots:
            stream = fairness.next_admission(self.waiting, live_per_client)
            if stream is None:
                break
            self.waiting.remove(stream)
            live_per_client[stream.client] += 1
            stream.slot = heapq.heappop(self._free_slots)
            self.live[stream.slot] = stream
            plan.open.append(stream)
        # a stream blocked on its reader, or waiting for its mel frames, sits this step out
        plan.running = [self.live[s] for s in sorted(self.live)
                     if not self.live[s].blocked and self.live[s].ahead > 0]
        if plan.running and self._hold(plan.running, now):
            plan.running = []
        else:
            self.held_since = None
            self.gathering = set()
        if not plan.running:
            return plan if plan.free or plan.open else None
        plan.chunk_samples = self.chunk_length(plan.running)
        return plan

    @staticmethod
    def _paced(stream: Stream) -> bool:
        """Its mel streams in and more is to come (a stream that ended runs at once)."""
        return stream.ready is not None and stream.ready < stream.num_samples

    def _hold(self, running: list[Stream], now: float) -> bool:
        """Hold this step back to gather paced streams still waiting for their next frame
        (see the module docstring); False once `gather_s` has passed since the first of
        `running` was found ready, or when none waits."""
        if self.gather_s <= 0 or not all(self._paced(s) for s in running):
            return False
        self.gathering = {s for s in self.live.values() if self._paced(s) and s.ahead == 0
                          and not s.blocked and not self._leaving(s)}
        if not self.gathering:
            return False
        if self.held_since is None:
            self.held_since = now
        return now - self.held_since < self.gather_s

    def frames_came(self, stream: Stream) -> bool:
        """Frames came for `stream`, which had none ready when last planned: whether a new
        plan is due now. While a step is held, only when `stream` was the last one it waits
        for (the hold's time runs it otherwise, and no plan could differ before); else
        always."""
        if self.held_since is None:
            return True
        self.gathering.discard(stream)
        return not self.gathering

    def hold_left(self, now: float) -> float | None:
        """Seconds until a held step runs anyway; None when no step is held."""
        if self.held_since is None:
            return None
        return max(0.0, self.held_since + self.gather_s - now)

    def chunk_length(self, running: list[Stream]) -> int:
        # short steps for a new stream's first audio, and while a stream waits for its mel
        # frames (when they come they must not wait behind a long step of the others)
        fed = [s.ahead for s in running if s.ready is not None]
        waiting = not fed and any(s.ready is not None and not s.done
                                  for s in self.live.values())
        new = waiting or any(s.produced == 0 for s in running)
        cap = self.first_chunk_size if new else self.chunk_size
        target = self.first_target_s if new else self.chunk_target_s
        per_step = self.cost.per_step(len(running))
        k = cap if per_step is None or per_step <= 0 else round(target / per_step)
        k = max(self.min_chunk_size, min(cap, k))
        if fed and self.align > 1:
            # whole frames for streamed mels: their frames allow whole hops, and a step cut
            # inside one (a new stream's short first step) would split every later hop
            # into two steps, each bounded by the other part (twice the steps, for good)
            k = max(self.align, k - k % self.align)
        # a stream's first step makes what its encoder takes before any byte leaves (an mp3
        # frame and its look-ahead): its first audio is one step away, not several; not
        # when another stream's first bytes would wait for it (the least need counts)
        need = [s.job.first_samples - s.produced for s in running
                if s.job is not None and s.produced < s.job.first_samples]
        if need:
            k = max(k, min(self.chunk_size, min(need)))
        k = min(k, max(s.remaining for s in running))
        # no further than a streamed mel's frames allow: its audio goes out as they come
        return max(1, min([k, *fed]))

    def update(self, plan: Plan, seconds: float) -> list[Stream]:
        """Record a finished step: count samples, learn its cost. Returns streams now done."""
        if plan.running and plan.chunk_samples:
            self.cost.observe(len(plan.running), plan.chunk_samples, seconds)
        finished = []
        for stream in plan.running:
            stream.produced = min(stream.num_samples, stream.produced + plan.chunk_samples)
            if stream.done and not stream.cancelled:
                finished.append(stream)
        return finished
