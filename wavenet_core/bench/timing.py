"""Timing generation backends: samples/s of `backend.generate` on fresh streams.

Reusable by `benchmarks/` and `wavenet bench`: any backend with the common interface
(new_state, open_slot, generate) works.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from wavenet_core.audio.lpc import timing_rows


@dataclass
class GenerationTiming:
    backend: str
    batch: int
    num_steps: int
    seconds: list[float] = field(default_factory=list)       # wall clock, one per repeat
    cpu_seconds: list[float] = field(default_factory=list)   # process CPU time (all threads)

    @property
    def best_seconds(self) -> float:
        return min(self.seconds)

    @property
    def samples_per_s(self) -> float:
        """Aggregate samples/s over the batch, from the fastest repeat."""
        return self.batch * self.num_steps / self.best_seconds

    @property
    def median_samples_per_s(self) -> float:
        return self.batch * self.num_steps / statistics.median(self.seconds)

    @property
    def per_stream_samples_per_s(self) -> float:
        return self.samples_per_s / self.batch

    @property
    def samples_per_cpu_s(self) -> float:
        """Samples per second of CPU time, all threads together (fastest repeat): what one
        core achieves, nearly independent of other load on a shared machine."""
        return self.batch * self.num_steps / min(self.cpu_seconds)


def time_generation(backend, batch: int, num_steps: int, repeats: int = 3,
                    warmup_steps: int = 16, temperature: float = 1.0,
                    local_fn=None) -> GenerationTiming:
    """Time `repeats` calls of `backend.generate(state, slots, num_steps)` on `batch` streams.

    Streams get seeds 0..batch-1 and `temperature`. Locally conditioned models need
    `local_fn(batch, steps)` returning the [batch, steps, mel_channels] conditioning
    (it is called outside the timed region); an excitation model gets zero coefficient
    rows (lpc.timing_rows).
    """
    state = backend.new_state(batch)
    slots = list(range(batch))
    for slot in slots:
        backend.open_slot(state, slot, seed=slot, temperature=temperature)
    local = local_fn(batch, warmup_steps) if local_fn else None
    backend.generate(state, slots, warmup_steps, local,
                     **timing_rows(backend.config, batch, warmup_steps))
    timing = GenerationTiming(getattr(backend, "name", type(backend).__name__), batch, num_steps)
    local = local_fn(batch, num_steps) if local_fn else None
    rows = timing_rows(backend.config, batch, num_steps)
    for _ in range(repeats):
        cpu, start = time.process_time(), time.perf_counter()
        backend.generate(state, slots, num_steps, local, **rows)
        timing.seconds.append(time.perf_counter() - start)
        timing.cpu_seconds.append(time.process_time() - cpu)
    return timing
