"""The runner: one model's generation session, stepped off the event loop.

`execute(plan)` runs in the runner's own single worker thread, so the session's state is
only ever touched by one thread and the event loop stays free while a chunk is generated.
It frees and opens slots, has the session condition and generate K samples for every
running slot in one batch and returns each stream's PCM s16le bytes. Everything about
turning a stream's mel into audio is the library's `GenerationSession`; the runner keeps
only its thread and failure isolation: a failure confined to one stream (opening its slot,
its conditioning, its generation: a failed batched call is retried stream by stream) is
returned in that stream's place and ends that request only.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from server.engine.prepare import Job
from server.engine.scheduler import Plan
from wavenet_core.generation.session import GenerationSession


class Runner:
    def __init__(self, name: str, backend, config, num_slots: int, cond_net=None):
        self.name, self.backend, self.config, self.num_slots = name, backend, config, num_slots
        self.session = GenerationSession(backend, num_slots, cond_net, config)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"runner-{name}")

    @property
    def state(self):
        return self.session.state

    async def execute(self, plan: Plan) -> list[bytes]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.execute_sync, plan)

    async def call(self, fn, *args):
        """Run `fn(*args)` on the runner's thread (warm-up, anything touching the state)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def execute_sync(self, plan: Plan) -> list[bytes | Exception]:
        """One step: free, open, generate. Returns each running stream's PCM bytes, or the
        exception that stream alone met (its slot, its conditioning or its generation):
        one stream's failure is not the others'."""
        failed: dict[int, Exception] = {}
        self._update_slots(plan, failed)
        if not plan.running or plan.chunk_samples < 1:
            return []
        k = plan.chunk_samples
        out = self._generate_isolated([s for s in plan.running if s.slot not in failed], k,
                                      failed)
        return [failed[s.slot] if s.slot in failed else out[s.slot] for s in plan.running]

    def _update_slots(self, plan: Plan, failed: dict[int, Exception]) -> None:
        """Free the leaving streams' slots and open the new ones' (a failure is recorded)."""
        for slot in plan.free:
            self.session.free(slot)
        for stream in plan.open:
            try:
                job: Job = stream.job
                self.session.open(stream.slot, speaker=job.speaker, seed=job.seed,
                                  temperature=job.temperature, mel=job.mel)
            except Exception as exc:
                failed[stream.slot] = exc

    def _generate_isolated(self, streams: list, k: int,
                           failed: dict[int, Exception]) -> dict[int, bytes]:
        """Condition and generate k samples for every stream at once (one batch: the
        session writes every stream's mel frames into one array); if that fails, each
        alone, so the failure (its conditioning or its generation) is pinned on its
        stream."""
        out: dict[int, bytes] = {}
        if not streams:
            return out
        try:
            out.update(zip([s.slot for s in streams], self._generate(streams, k)))
        except Exception as exc:
            if len(streams) == 1:
                failed[streams[0].slot] = exc
            else:
                # which stream? each alone (the batched call's partial work, if any, is
                # lost to the others: a glitch of at most k samples, not their end)
                for s in streams:
                    try:
                        out[s.slot] = self._generate([s], k)[0]
                    except Exception as alone:
                        failed[s.slot] = alone
        return out

    def _generate(self, streams: list, k: int) -> list[bytes]:
        pcm = self.session.generate_pcm([s.slot for s in streams], k)
        return [pcm[i, :min(k, s.remaining)].tobytes() for i, s in enumerate(streams)]

    def warmup(self, num_samples: int) -> list[tuple[int, int, float]]:
        """Generate a little at batch 1 and at full batch; returns (batch, steps, seconds)
        measurements for the scheduler's cost model. Leaves every slot free."""
        timings = []
        if num_samples <= 0:
            return timings
        sizes = sorted({1, max(1, self.num_slots // 2), self.num_slots})
        m = self.config.mel_channels
        for i, n in enumerate(sizes):
            slots = list(range(n))
            for slot in slots:
                self.backend.open_slot(self.state, slot, seed=slot, temperature=1.0)
            steps = max(8, num_samples // n) if i else num_samples
            local = np.zeros((n, steps, m), np.float32) if m else None
            lpc = ({"lpc": np.zeros((n, steps, self.config.lpc_order), np.float32)}
                   if self.config.lpc_excitation else {})     # an excitation model's rows
            first = 4 if i == 0 else 1          # first call pays any compilation
            self.backend.generate(self.state, slots, first, None if local is None
                                  else local[:, :first], **{key: rows[:, :first]
                                                            for key, rows in lpc.items()})
            t0 = time.perf_counter()
            self.backend.generate(self.state, slots, steps, local, **lpc)
            timings.append((n, steps, time.perf_counter() - t0))
            for slot in slots:
                self.state.free_slot(slot)
        self.session.warm()             # the session's own per-chunk code (issue 32)
        return timings
