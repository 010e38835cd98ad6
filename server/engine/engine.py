"""The engine: one model's async front door and its generation loop.

`submit(job)` queues a request and returns a `StreamHandle`, an async iterator of PCM
s16le chunks; `handle.status` says how it ended. `reserve(client)` takes the request's place
in the queue first (or refuses it) and `attach(handle, job)` gives it its job once prepared:
a request is admitted before any costly preparation is done for it. The loop repeats
`plan = scheduler.schedule()` -> `await runner.execute(plan)` (a worker thread) ->
`scheduler.update(plan, seconds)` and hands each stream its chunk.

Back-pressure: each stream buffers at most `buffer_chunks` chunks. A stream whose buffer
is full sits out the next steps (the others keep going); if it stays full for
`slow_client_s` it is dropped with status "slow_consumer". Memory per stream is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from enum import Enum

from server.engine.prepare import Job
from server.engine.runner import Runner
from server.engine.scheduler import ClientLimit, Plan, QueueFull, Scheduler, Stream
from server.metrics import Metrics
from server.timeouts import bounded

log = logging.getLogger("wavenet.engine")

_END = None


class StreamEnd(str, Enum):
    """How a stream ended: the one vocabulary every transport maps once (HTTP to a status,
    WebSocket to a close code, the page to a message). The values are the wire's words."""

    DONE = "done"
    CANCELLED = "cancelled"            # the client asked (WS "cancel", HTTP disconnect)
    DISCONNECTED = "disconnected"      # the WebSocket went away
    SLOW_CONSUMER = "slow_consumer"    # the client did not read the audio in time
    SHUTDOWN = "shutdown"              # the server is stopping
    PROTOCOL_ERROR = "protocol_error"  # the client broke the protocol mid-stream
    SHED = "shed"                      # its client's flood: dropped from a full queue
    ERROR = "error"                    # generation failed (a server-side problem)

    def __str__(self) -> str:
        return self.value


class Overloaded(Exception):
    """The waiting queue is full; retry later. `flooding`: the client holds more than its
    share (429), else the server is busy (503)."""

    def __init__(self, flooding: bool = False):
        super().__init__("flooding" if flooding else "overloaded")
        self.flooding = flooding


class TooManyStreams(Exception):
    """The client holds its cap of streams on this model already."""


class ShuttingDown(Exception):
    """The server is draining and admits no new requests."""


class StreamHandle:
    """One request's audio as it is made: `async for chunk in handle` yields PCM bytes."""

    def __init__(self, engine: Engine, stream: Stream, sample_rate: int):
        self.engine, self.stream, self.sample_rate = engine, stream, sample_rate
        self.id = stream.id
        self.created = time.perf_counter()
        self.first_audio_at: float | None = None
        self.finished_at: float | None = None
        self.samples = 0          # samples handed to this handle
        self.status: StreamEnd | None = None
        self.blocked_since: float | None = None
        # the chunks not yet read, then _END (never taken: a stream stays ended for any
        # further read); a deque and one waiter, not an asyncio.Queue (a put and a get are
        # about ten calls each, 60 times a second per stream)
        self._chunks: deque = deque()
        self._waiter: asyncio.Future | None = None

    # -- consumer side -------------------------------------------------------------------
    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        chunks = self._chunks
        while not chunks:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = chunks[0]
        if item is _END:
            raise StopAsyncIteration
        chunks.popleft()
        if self.stream.blocked:                # a paused stream may run again (a stream
            self.engine.wake()                 # that was not paused changes no plan)
        return item

    @property
    def num_samples(self) -> int | None:
        """The audio's length in samples; None for a mel still streaming in."""
        source = self.mel_source
        return source.num_samples if source is not None else self.stream.num_samples

    @property
    def mel_source(self):
        """The stream's mel when it streams in (the WebSocket reader appends to it)."""
        job = self.stream.job
        source = job.mel if job is not None else None
        return source if source is not None and source.live else None

    def wake(self) -> None:
        """Something this stream waited for (mel frames, their end) has arrived."""
        self.engine.wake()

    def fed(self) -> None:
        """More mel frames came. Wakes the engine only when, as it last saw this stream, it
        had nothing ready, and no held step waits for other streams' frames too
        (`Scheduler.frames_came`): else the engine sees the frames when its step (or a held
        step's time) ends, and a wake per frame would be a pass of its loop per frame, 1,000
        a second at 16 streams."""
        stream = self.stream
        if stream.ahead == 0 and self.engine.scheduler.frames_came(stream):
            self.engine.wake()

    def cancel(self, status: StreamEnd = StreamEnd.CANCELLED) -> None:
        """Stop this stream; its slot is freed at the next chunk boundary."""
        self.engine.cancel(self, status)

    @property
    def finished(self) -> bool:
        return self.status is not None

    @property
    def time_to_first_audio(self) -> float | None:
        return None if self.first_audio_at is None else self.first_audio_at - self.created

    @property
    def real_time_factor(self) -> float | None:
        """Wall time from submit to the last sample over the audio's duration (< 1: faster
        than real time)."""
        if self.finished_at is None or not self.samples:
            return None
        return (self.finished_at - self.created) / (self.samples / self.sample_rate)

    def log_fields(self) -> dict:
        """What the access log records about this stream."""
        ttfa, rtf = self.time_to_first_audio, self.real_time_factor
        status = self.status or StreamEnd.CANCELLED
        return {"samples": self.samples, "stream_status": status.value,
                "ttfa_ms": None if ttfa is None else round(ttfa * 1000, 1),
                "rtf": None if rtf is None else round(rtf, 4)}

    # -- engine side ---------------------------------------------------------------------
    @property
    def buffered(self) -> int:
        return len(self._chunks)

    def _push(self, data: bytes) -> None:
        if self.first_audio_at is None:
            self.first_audio_at = time.perf_counter()
        self.samples += len(data) // 2
        self._put(data)

    def _finish(self, status: StreamEnd) -> None:
        if self.status is None:
            self.status = status
            self.finished_at = time.perf_counter()
            self._put(_END)

    def _put(self, item) -> None:
        self._chunks.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Engine:
    def __init__(self, name: str, runner: Runner, scheduler: Scheduler, metrics: Metrics,
                 *, sample_rate: int, buffer_chunks: int = 32, slow_client_s: float = 30.0):
        self.name, self.runner, self.scheduler, self.metrics = name, runner, scheduler, metrics
        self.sample_rate = sample_rate
        self.buffer_chunks, self.slow_client_s = buffer_chunks, slow_client_s
        self.handles: dict[str, StreamHandle] = {}
        self.accepting = True
        self._stopping = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._live_gauge, self._waiting_gauge = (metrics.live.labels(name),
                                                 metrics.waiting.labels(name))
        backend = getattr(runner, "backend", None)
        if hasattr(backend, "kernel_cpu_s"):           # the compiled CPU backend's clock
            metrics.kernel_cpu.labels(name).set_function(lambda: backend.kernel_cpu_s)

    # -- front door ----------------------------------------------------------------------
    def submit(self, job: Job, request_id: str | None = None, client: str = ""
               ) -> StreamHandle:
        handle = self.reserve(request_id, client)
        self.attach(handle, job)
        return handle

    def reserve(self, request_id: str | None = None, client: str = "") -> StreamHandle:
        """A place in the queue for a request still to be prepared (`attach` its job), or
        ShuttingDown / Overloaded / TooManyStreams. A stream shed for it ends "shed"."""
        if not self.accepting:
            raise ShuttingDown
        stream = Stream(id=request_id or uuid.uuid4().hex, num_samples=0, client=client,
                        preparing=True)
        try:
            shed = self.scheduler.add(stream)
        except QueueFull as exc:
            raise Overloaded(exc.flooding) from None
        except ClientLimit:
            raise TooManyStreams from None
        if shed is not None and shed.id in self.handles:
            self._end(self.handles[shed.id], StreamEnd.SHED)
        handle = StreamHandle(self, stream, self.sample_rate)
        self.handles[stream.id] = handle
        self._idle.clear()
        self._gauges()
        return handle

    def attach(self, handle: StreamHandle, job: Job) -> None:
        """The reserved stream's job: it may take a slot from the next step on."""
        stream = handle.stream
        stream.num_samples, stream.job, stream.preparing = job.num_samples, job, False
        self.wake()

    def cancel(self, handle: StreamHandle, status: StreamEnd = StreamEnd.CANCELLED) -> None:
        if handle.finished:
            return
        self.scheduler.cancel(handle.stream)
        self._end(handle, status)
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    @property
    def busy(self) -> bool:
        return bool(self.handles)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"engine-{self.name}")

    async def stop(self) -> None:
        """End every stream ("shutdown"), stop the loop, release the worker thread."""
        self.accepting = False
        for handle in list(self.handles.values()):
            self.cancel(handle, StreamEnd.SHUTDOWN)
        self._stopping = True      # a flag as well: wait_for may swallow a cancel (3.11)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.runner.close()

    async def drain(self, grace: float) -> None:
        """Admit nothing more; give live streams `grace` seconds to finish; end the rest."""
        self.accepting = False
        await self.wait_idle(grace)
        for handle in list(self.handles.values()):
            self.cancel(handle, StreamEnd.SHUTDOWN)

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    # -- the loop ------------------------------------------------------------------------
    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            self._refresh_streams()
            now = time.perf_counter()
            plan = self.scheduler.schedule(now)
            self._gauges()
            if plan is None:         # nothing to do, or a step held to gather streams
                held = self.scheduler.hold_left(now)
                timeout = held if held is not None else 0.5 if self.handles else None
                try:
                    await bounded(self._wake.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
                continue
            result = await self._step(plan)
            if result is not None:
                self._deliver(plan, *result)

    async def _step(self, plan: Plan) -> tuple[list, float] | None:
        """Run one plan on the runner -> (each stepping stream's bytes or error, seconds);
        None when the whole step failed (its streams have ended with "error")."""
        t0 = time.perf_counter()
        try:
            outputs = await self.runner.execute(plan)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("model %s: generation step failed (requests %s)", self.name,
                          ", ".join(s.id for s in plan.running + plan.open) or "none")
            for stream in plan.running + plan.open:
                self.scheduler.cancel(stream)
                handle = self.handles.get(stream.id)
                if handle is not None:
                    self._end(handle, StreamEnd.ERROR)
            return None
        return outputs, time.perf_counter() - t0

    def _deliver(self, plan: Plan, outputs: list, seconds: float) -> None:
        """Hand each stream its chunk, end the failed and the finished, record the step."""
        for stream, data in zip(plan.running, outputs, strict=True):
            if isinstance(data, Exception):       # this stream alone failed
                self._fail(stream, data)
        finished = self.scheduler.update(plan, seconds)
        if plan.running:
            self.metrics.observe_step(self.name, len(plan.running), self.runner.num_slots,
                                      plan.chunk_samples, seconds)
        for stream, data in zip(plan.running, outputs, strict=True):
            handle = self.handles.get(stream.id)
            if handle is not None and not handle.finished and data:
                first = handle.first_audio_at is None
                handle._push(data)
                if first:
                    self.metrics.ttfa.labels(self.name).observe(handle.time_to_first_audio)
        for stream in finished:
            handle = self.handles.get(stream.id)
            if handle is not None:
                self._end(handle, StreamEnd.DONE)

    def _fail(self, stream: Stream, error: Exception) -> None:
        log.error("model %s: generation failed for request %s: %s: %s", self.name, stream.id,
                  type(error).__name__, error, exc_info=(type(error), error,
                                                         error.__traceback__))
        self.scheduler.cancel(stream)
        handle = self.handles.get(stream.id)
        if handle is not None:
            self._end(handle, StreamEnd.ERROR)

    def _refresh_streams(self) -> None:
        """Before each plan: how far each streamed mel lets its stream go, and which streams
        are blocked on a full buffer (a reader too slow for too long is dropped)."""
        now = time.perf_counter()
        for handle in list(self.handles.values()):
            stream = handle.stream
            source = handle.mel_source
            if source is not None:
                stream.ready = source.ready_samples
                if source.ended:
                    stream.num_samples = source.ready_samples
            stream.blocked = handle.buffered >= self.buffer_chunks
            if not stream.blocked:
                handle.blocked_since = None
            elif handle.blocked_since is None:
                handle.blocked_since = now
            elif now - handle.blocked_since > self.slow_client_s:
                log.warning("model %s: dropping stream %s, client too slow", self.name,
                            handle.id)
                self.cancel(handle, StreamEnd.SLOW_CONSUMER)

    def _end(self, handle: StreamHandle, status: StreamEnd) -> None:
        handle._finish(status)
        self.handles.pop(handle.id, None)
        if status is StreamEnd.DONE:
            rtf = handle.real_time_factor
            if rtf is not None:
                self.metrics.rtf.labels(self.name).observe(rtf)
        if not self.handles:
            self._idle.set()

    def _gauges(self) -> None:
        self._live_gauge.set(self.scheduler.num_live)      # each pass of the loop: the
        self._waiting_gauge.set(self.scheduler.num_waiting)  # children, not a label lookup
