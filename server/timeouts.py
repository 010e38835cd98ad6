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
