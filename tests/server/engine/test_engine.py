"""Scheduler and engine without a server: admission, chunk lengths, back-pressure, readiness."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from server.engine.engine import Engine, Overloaded
from server.engine.prepare import Job
from server.engine.scheduler import QueueFull, Scheduler, Stream
from server.metrics import Metrics


def test_scheduler_admits_at_chunk_boundaries_and_frees_slots():
    s = Scheduler(2, 1, chunk_size=100, first_chunk_size=10, min_chunk_size=1)
    a, b, c = Stream("a", 25), Stream("b", 300), Stream("c", 5)
    s.add(a)
    s.add(b)
    s.add(c)                                       # waits: both slots taken
    with pytest.raises(QueueFull):
        s.add(Stream("d", 5))
    plan = s.schedule()
    assert [x.id for x in plan.open] == ["a", "b"] and plan.chunk_samples == 10   # first chunk
    assert s.update(plan, 1e-6) == []
    plan = s.schedule()
    assert plan.open == [] and plan.chunk_samples == 100
    assert s.update(plan, 1e-6) == [a]              # a needed only 15 more
    plan = s.schedule()
    assert plan.free == [0] and [x.id for x in plan.open] == ["c"] and c.slot == 0
    assert plan.chunk_samples == 10                     # a short first chunk again, for c
    s.cancel(b)
    s.update(plan, 1e-6)
    plan = s.schedule()
    assert sorted(plan.free) == [0, 1] and plan.running == [] and s.num_live == 0


def test_chunk_length_follows_the_cost_model():
    s = Scheduler(4, 0, chunk_size=10_000, first_chunk_size=1000, min_chunk_size=16,
                  chunk_target_s=0.04, first_target_s=0.01)
    s.cost.observe(1, 100, 0.01)                   # 100 us per step alone
    s.cost.observe(4, 100, 0.04)                   # 400 us per step at 4
    one = [Stream("x", 10**6, produced=5)]
    assert s.chunk_length(one) == 400
    four = [Stream(str(i), 10**6, produced=5) for i in range(4)]
    assert s.chunk_length(four) == 100
    assert s.chunk_length(four[:2]) == 200         # interpolated
    assert s.chunk_length([Stream("new", 10**6)]) == 100     # first chunk: 10 ms


def test_a_first_step_makes_what_the_encoder_takes_before_its_first_bytes():
    """An mp3 response's encoder gives nothing until about 1,728 samples came (its frame and
    LAME's look-ahead): that stream's first step makes them at once, so its first bytes are
    one step away; a pcm stream's first step stays the short one, and one that starts
    beside the mp3 stream is not kept waiting for it."""
    from server.wire.encoding import resolve_output

    s = Scheduler(4, 0, chunk_size=10_000, first_chunk_size=1000, min_chunk_size=16,
                  chunk_target_s=0.04, first_target_s=0.01)
    s.cost.observe(1, 100, 0.01)
    need = resolve_output("mp3", None, 16000).first_samples
    assert 1000 < need <= 2304
    mp3 = Stream("mp3", 10**6, job=Job(10**6, first_samples=need))
    pcm = Stream("pcm", 10**6, job=Job(10**6, first_samples=resolve_output(
        "pcm", None, 16000).first_samples))
    assert s.chunk_length([pcm]) == 100
    assert s.chunk_length([mp3]) == need
    two_pcm = [pcm, Stream("pcm2", 10**6, job=Job(10**6))]
    assert s.chunk_length([mp3, pcm]) == s.chunk_length(two_pcm) < need   # pcm does not wait
    mp3.produced = need                  # its bytes are out: the cost model rules again
    assert s.chunk_length([mp3]) == 400


class FakeRunner:
    """Produces `k` samples of silence per step; no model."""

    num_slots = 2

    async def execute(self, plan):
        await asyncio.sleep(0.001)
        return [b"\x00\x00" * min(plan.chunk_samples, s.remaining) for s in plan.running]

    def close(self):
        pass


def make_engine(**kw) -> Engine:
    sched = Scheduler(2, 1, chunk_size=10, first_chunk_size=10, min_chunk_size=10)
    return Engine("m", FakeRunner(), sched, Metrics(), sample_rate=16000, **kw)


def test_slow_consumer_pauses_then_is_dropped_without_stalling_others():
    async def main():
        engine = make_engine(buffer_chunks=3, slow_client_s=0.3)
        engine.start()
        slow = engine.submit(Job(num_samples=10_000))
        fast = engine.submit(Job(num_samples=500))
        got = b"".join([chunk async for chunk in fast])
        assert fast.status == "done" and len(got) == 1000
        assert slow.buffered <= 4 and slow.status is None        # paused, bounded
        with pytest.raises(Overloaded):      # one idle slot + one waiting place, then full
            for _ in range(3):
                engine.submit(Job(num_samples=10**6))
        await asyncio.sleep(0.6)
        assert slow.status == "slow_consumer"
        await engine.stop()

    asyncio.run(main())


def test_cancel_while_waiting_and_stop_ends_everything():
    async def main():
        engine = make_engine()
        first, second = engine.submit(Job(10**6)), engine.submit(Job(10**6))
        waiting = engine.submit(Job(10**6))
        waiting.cancel()
        assert waiting.status == "cancelled" and engine.scheduler.num_waiting == 2
        engine.start()
        await asyncio.sleep(0.02)
        await engine.stop()
        assert first.status == second.status == "shutdown"
        assert [c async for c in waiting] == []

    asyncio.run(main())


def test_readyz_is_503_until_models_are_warm(checkpoints):
    from server.app import create_app
    from server.settings import Settings

    async def main():
        app = create_app(Settings(models=[checkpoints / "plain.safetensors"], backend="torch",
                                  warmup_samples=64))
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=transport, base_url="http://t") as client:
            early = await client.get("/readyz")
            health = await client.get("/healthz")
            for _ in range(200):
                late = await client.get("/readyz")
                if late.status_code == 200:
                    break
                await asyncio.sleep(0.05)
        return early, health, late

    early, health, late = asyncio.run(main())
    assert early.status_code == 503 and early.json()["status"] == "loading"
    assert early.headers["retry-after"] and health.status_code == 200
    assert late.status_code == 200 and late.json()["models"] == {"plain": "ready"}


def test_a_stream_waiting_for_mel_frames_sits_out_and_bounds_the_step():
    s = Scheduler(4, 0, chunk_size=10_000, first_chunk_size=1000, min_chunk_size=16,
                  chunk_target_s=0.1, first_target_s=0.01)
    s.cost.observe(2, 100, 0.01)                     # 0.1 ms per step at batch 2
    plain, fed = Stream("plain", 10**6, produced=5), Stream("fed", 10**6, produced=512)
    for stream in (plain, fed):
        s.add(stream)
    fed.ready = 512                                  # no frame beyond what it has made
    plan = s.schedule()
    assert plan.running == [plain]                      # the waiting stream sits out
    assert plan.chunk_samples == 100                     # short steps while it waits
    s.update(plan, 0.01)
    fed.ready = 768                                  # one more frame: 256 samples
    plan = s.schedule()
    assert plan.running == [plain, fed] and plan.chunk_samples == 256     # that frame's samples
    fed.ready = 512 + 40
    fed.produced = 512
    assert s.schedule().chunk_samples == 40              # no further than its frames allow
