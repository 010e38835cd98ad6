"""`CpuBackend.kernel_cpu_s`: the CPU inside the kernel's calls, every thread's, which the
server exports (wavenet_kernel_cpu_seconds) and benchmarks/mel_stream.py sets beside the
server's own CPU (docs/performance.md)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.helpers.models import random_model
from wavenet_core.generation.cpu import backend as cpu_backend
from wavenet_core.generation.cpu.backend import CpuBackend
from wavenet_core.generation.cpu.sync import SPLIT_SUPPORTED
from wavenet_core.model.config import WaveNetConfig

CONFIG = WaveNetConfig(layers_per_stack=3, stacks=2, residual_channels=16, skip_channels=24,
                       classes=64)


def _backend(threads: int, split: str = "never") -> tuple[CpuBackend, object]:
    backend = CpuBackend(random_model(CONFIG, seed=3), threads=threads, split=split)
    state = backend.new_state(4)
    for slot in range(4):
        backend.open_slot(state, slot, seed=slot)
    return backend, state


class _PerThreadClock:
    """A thread CPU clock that reads 0, 1, 2, ... in each thread: every kernel call a
    thread makes then counts exactly one second."""

    def __init__(self):
        self.local = threading.local()
        self.threads: set[int] = set()

    def __call__(self) -> float:
        self.threads.add(threading.get_ident())
        now = getattr(self.local, "now", 0.0)
        self.local.now = now + 1.0
        return now


@pytest.mark.parametrize("threads, slots, split, calls", [
    (1, 4, "never", 1),            # one thread, one call
    (2, 4, "never", 2),            # group mode: one group per thread
    (2, 1, "always", 2),           # split mode: both threads on the one slot
])
def test_every_threads_kernel_call_is_counted(monkeypatch, threads, slots, split, calls):
    if split == "always" and not SPLIT_SUPPORTED:
        pytest.skip("split mode needs x86-64 Linux (cpu/sync.py)")
    backend, state = _backend(threads, split)
    backend.generate(state, list(range(slots)), 8)          # compiled, pool started
    clock = _PerThreadClock()
    monkeypatch.setattr(cpu_backend.time, "thread_time", clock)
    before = backend.kernel_cpu_s
    backend.generate(state, list(range(slots)), 8)
    assert backend.kernel_cpu_s - before == pytest.approx(calls)
    assert len(clock.threads) == calls                      # each job on its own thread
    backend.close()


def test_kernel_clock_is_real_cpu_within_the_process():
    backend, state = _backend(2)
    backend.generate(state, [0, 1, 2, 3], 8)
    before, process = backend.kernel_cpu_s, time.process_time()
    codes = backend.generate(state, [0, 1, 2, 3], 4000)
    spent = backend.kernel_cpu_s - before
    assert np.asarray(codes).shape == (4, 4000)
    # both threads' time inside the kernel: some, and never more than the whole process's
    assert 0 < spent <= time.process_time() - process
    backend.close()
