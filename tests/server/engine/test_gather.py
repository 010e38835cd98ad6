"""Gathering streamed mels into one step (scheduler.py's `gather_s` and `align`): a step is
held while paced streams wait for their next frame, for at most the window; only paced
streams are held; steps of streamed mels keep to whole hops."""

from __future__ import annotations

import asyncio

import pytest

from server.engine.scheduler import Scheduler, Stream

HOP = 256
LONG = 10**6          # a streamed mel's length until it ends: the limit


def paced(name: str, ready: int, produced: int = 0) -> Stream:
    return Stream(name, LONG, ready=ready, produced=produced)


def scheduler(gather_s: float = 0.016, align: int = HOP) -> Scheduler:
    s = Scheduler(4, 0, chunk_size=4096, first_chunk_size=512, min_chunk_size=16,
                  chunk_target_s=0.1, first_target_s=0.01, gather_s=gather_s, align=align)
    s.cost.observe(2, 100, 0.001)                    # 10 us per step at batch 2
    return s


def test_a_step_waits_for_the_paced_streams_still_without_a_frame():
    s = scheduler()
    a, b = paced("a", HOP, produced=HOP), paced("b", HOP, produced=HOP)
    a.ready = 2 * HOP                                # a's next frame came, b's not yet
    for stream in (a, b):
        s.add(stream)
    first = s.schedule(now=10.0)
    assert first.open == [a, b] and first.running == []       # slots opened, step held
    assert s.schedule(now=10.005) is None
    assert s.hold_left(10.005) == pytest.approx(0.011)
    b.ready = 2 * HOP                                # b's frame: both step together
    plan = s.schedule(now=10.006)
    assert plan.running == [a, b] and plan.chunk_samples == HOP
    assert s.hold_left(10.006) is None


def test_a_held_step_runs_without_the_late_stream_once_the_window_passed():
    s = scheduler()
    a, b = paced("a", 2 * HOP, produced=HOP), paced("b", HOP, produced=HOP)
    for stream in (a, b):
        s.add(stream)
    assert s.schedule(now=0.0).running == []
    assert s.schedule(now=0.015) is None
    plan = s.schedule(now=0.0161)
    assert plan.running == [a] and plan.chunk_samples == HOP
    s.update(plan, 0.001)
    b.ready = 2 * HOP                                # b is now the one ready, a waits
    assert s.schedule(now=0.02) is None and s.hold_left(0.02) == pytest.approx(s.gather_s)


def test_only_paced_streams_are_held():
    s = scheduler()
    whole = Stream("whole", 50_000, produced=HOP)    # its mel came whole: always ready
    ended = Stream("ended", 3 * HOP, ready=3 * HOP, produced=HOP)   # its mel has ended
    waiting = paced("waiting", HOP, produced=HOP)
    for stream in (whole, waiting):
        s.add(stream)
    assert s.schedule(now=0.0).running == [whole]
    s.cancel(whole)
    s.add(ended)
    plan = s.schedule(now=0.001)
    assert plan.running == [ended]                   # the rest of a finished mel: at once
    off = scheduler(gather_s=0.0)
    a, b = paced("a", 2 * HOP, produced=HOP), paced("b", HOP, produced=HOP)
    off.add(a)
    off.add(b)
    assert off.schedule(now=0.0).running == [a]      # gathering off: each as it comes


def test_steps_of_streamed_mels_keep_to_whole_hops():
    """A new stream's first step is short by the cost model (10 ms at 10 us a step: 1,000
    samples, here capped at 512; at 70 us a step, 143): a paced stream's step is a whole
    number of hops, so every later hop stays one step, not two."""
    for align, want in ((HOP, HOP), (1, 143)):
        s = scheduler(align=align)
        s.cost = type(s.cost)()
        s.cost.observe(1, 100, 0.007)                # 70 us per step alone
        fresh = paced("fresh", 4 * HOP)
        s.add(fresh)
        plan = s.schedule(now=0.0)
        assert plan.running == [fresh] and plan.chunk_samples == want


def test_while_a_step_is_held_only_the_last_awaited_frame_calls_for_a_plan():
    """`frames_came`: a held step waiting for b and c is planned again once both have a
    frame, not at each; with no step held, any frame calls for a plan."""
    s = scheduler()
    a, b, c = (paced(name, HOP, produced=HOP) for name in "abc")
    for stream in (a, b, c):
        s.add(stream)
    assert s.frames_came(a)                          # nothing held yet: plan now
    a.ready = 2 * HOP
    assert s.schedule(now=0.0).running == []         # held for b and c
    assert s.gathering == {b, c}
    b.ready = 2 * HOP
    assert not s.frames_came(b)                      # c still to come: the hold goes on
    assert not s.frames_came(b)                      # a second frame of b changes nothing
    c.ready = 2 * HOP
    assert s.frames_came(c)                          # the last one: plan now
    plan = s.schedule(now=0.001)
    assert plan.running == [a, b, c] and s.gathering == set()
    assert s.frames_came(a)                          # no step held: any frame plans


class Frames:
    """A streamed mel's side the engine reads: how many samples its frames allow."""

    live, ended, num_samples = True, False, None

    def __init__(self):
        self.ready_samples = 0


def test_the_engine_steps_at_the_last_awaited_frame_not_at_the_holds_end():
    """Through the engine: with a 5 s window, a step held for b runs as b's frame comes
    (`StreamHandle.fed` -> `frames_came` wakes it), and not at a's frame alone."""
    from server.engine.engine import Engine
    from server.engine.prepare import Job
    from server.metrics import Metrics

    class Runner:
        num_slots = 2

        async def execute(self, plan):
            return [bytes(2 * plan.chunk_samples) for _ in plan.running]

        def close(self):
            pass

    async def main():
        sched = Scheduler(2, 0, chunk_size=4096, first_chunk_size=512, min_chunk_size=16,
                          gather_s=5.0, align=HOP)
        engine = Engine("m", Runner(), sched, Metrics(), sample_rate=16000)
        a, b = (engine.submit(Job(num_samples=LONG, mel=Frames())) for _ in range(2))
        engine.start()
        await asyncio.sleep(0.05)                    # both admitted, neither has a frame
        a.stream.job.mel.ready_samples = HOP
        a.fed()
        await asyncio.sleep(0.05)
        assert a.buffered == 0 and sched.held_since is not None    # held for b
        b.stream.job.mel.ready_samples = HOP
        b.fed()
        chunks = await asyncio.wait_for(asyncio.gather(anext(a), anext(b)), 1.0)
        assert [len(c) for c in chunks] == [2 * HOP, 2 * HOP]
        await engine.stop()

    asyncio.run(main())
