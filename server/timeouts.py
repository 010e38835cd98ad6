"""`bounded(awaitable, seconds)`: await with a time limit (asyncio.TimeoutError past it),
without a new Task per await.

`asyncio.wait_for` wraps every coroutine in a Task of its own (before Python 3.12), with a
waiter future and a timer: the server paid that for each audio chunk sent and each mel
frame received, 2,000 times a second at 16 mel streams, on the event loop that shares the
two cores with the kernel (docs/performance.md, "The engine's share of the cores").
`asyncio.timeout` (3.11+) bounds the await in the running task instead; Python 3.10 falls
back to `wait_for`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def bounded(awaitable: Awaitable[T], seconds: float | None) -> T:
    """`await awaitable`, raising asyncio.TimeoutError after `seconds` (None: no limit)."""
    if seconds is None:
        return await awaitable
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)         # Python 3.10


class Watchdog:
    """Time limits on one task's awaits, one after another, with one timer among them.

    `await watch.bounded(awaitable, seconds)` is `bounded(awaitable, seconds)` for the task
    that made the watchdog, without a `Timeout` and a timer handle per await: a limit only
    moves a deadline, and the one timer, when it fires early (the await it was set for has
    ended), is set again for the deadline of the await now running, if any. The WebSocket
    routes bound every mel frame received and every audio chunk sent (about 60 of each per
    stream-second) this way (docs/performance.md, "Per-message work on the event loop").
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._deadline: float | None = None     # the running await's, None between them
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._expired = False

    async def bounded(self, awaitable: Awaitable[T], seconds: float | None) -> T:
        if seconds is None or not hasattr(asyncio, "timeout"):      # Python 3.10: no uncancel
            return await bounded(awaitable, seconds)
        deadline = self._loop.time() + seconds
        self._deadline = deadline
        if deadline < self._timer_at:
            self._set_timer(deadline)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if not self._expired:
                raise
            self._expired = False
            if self._task.uncancel() > 0:         # cancelled by someone else as well
                raise
            raise asyncio.TimeoutError from None
        finally:
            self._deadline = None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, float("inf")

    def _set_timer(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = self._loop.call_at(when, self._fire), when

    def _fire(self) -> None:
        self._timer, self._timer_at = None, float("inf")
        deadline = self._deadline
        if deadline is None:                 # between awaits: the next one sets a timer
            return
        if self._loop.time() + 0.001 < deadline:     # a timer may fire up to 1 ms early
            self._set_timer(deadline)
            return
        self._expired = True
        self._task.cancel()
