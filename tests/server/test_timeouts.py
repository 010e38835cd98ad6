"""`Watchdog`: one timer bounding each of a task's awaits, as `bounded` bounds one."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from server.timeouts import Watchdog

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11),
                                reason="Python 3.10 falls back to bounded (wait_for)")


def test_an_await_past_its_limit_times_out():
    async def main():
        watch = Watchdog()
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await watch.bounded(asyncio.sleep(5), 0.05)
        assert 0.04 < time.monotonic() - started < 1.0
        watch.close()

    asyncio.run(main())


def test_each_await_has_its_own_limit_not_their_sum():
    """Twenty awaits of 20 ms under a 60 ms limit: 400 ms in all, none late. The one timer
    set for the first fires while a later await runs and moves to that await's deadline."""
    async def main():
        watch = Watchdog()
        for _ in range(20):
            assert await watch.bounded(_after(0.02, "ok"), 0.06) == "ok"
        watch.close()

    asyncio.run(main())


def test_a_shorter_limit_after_a_longer_one_still_times_out():
    async def main():
        watch = Watchdog()
        assert await watch.bounded(_after(0.0, 1), 30.0) == 1    # its timer: 30 s away
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await watch.bounded(asyncio.sleep(5), 0.05)
        assert time.monotonic() - started < 1.0
        watch.close()

    asyncio.run(main())


def test_after_a_timeout_the_task_runs_on_and_the_next_await_is_bounded_again():
    async def main():
        watch = Watchdog()
        with pytest.raises(asyncio.TimeoutError):
            await watch.bounded(asyncio.sleep(5), 0.02)
        await asyncio.sleep(0.05)                  # not cancelled: the cancel was taken back
        assert asyncio.current_task().cancelling() == 0
        assert await watch.bounded(_after(0.01, "next"), 0.2) == "next"
        with pytest.raises(asyncio.TimeoutError):
            await watch.bounded(asyncio.sleep(5), 0.02)
        watch.close()

    asyncio.run(main())


def test_time_between_awaits_is_not_bounded():
    async def main():
        watch = Watchdog()
        assert await watch.bounded(_after(0.0, 1), 0.03) == 1
        await asyncio.sleep(0.1)              # past the first await's deadline, unbounded
        assert await watch.bounded(_after(0.0, 2), 0.03) == 2
        watch.close()

    asyncio.run(main())


def test_a_cancel_from_outside_stays_a_cancel():
    async def bounded_forever(watch_made: asyncio.Event):
        watch = Watchdog()
        watch_made.set()
        try:
            await watch.bounded(asyncio.sleep(5), 10.0)
        finally:
            watch.close()

    async def main():
        made = asyncio.Event()
        task = asyncio.create_task(bounded_forever(made))
        await made.wait()
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    asyncio.run(main())


async def _after(seconds: float, value):
    await asyncio.sleep(seconds)
    return value
