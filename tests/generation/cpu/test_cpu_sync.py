"""The split mode's barrier (cpu/sync.py): threads that meet at every barrier never pass
one early and never sleep through a partner's arrival (no lost wake-up)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from numba import njit

from wavenet_core.generation.cpu.sync import SPLIT_SUPPORTED, barrier, new_flags

pytestmark = pytest.mark.skipif(not SPLIT_SUPPORTED, reason="the barrier needs x86-64 Linux")


@njit(nogil=True)
def _meet(flags, thread, threads, rounds, spins, seen, work):
    """Each round: write my round number, meet, read everyone's, meet again. Uneven
    busy work between barriers, and spins=0, so waits end in futex sleeps."""
    acc = 0.0
    for g in range(1, rounds + 1):
        seen[thread, 0] = g
        barrier(flags, thread, threads, 2 * g - 1, spins)
        for other in range(threads):
            if seen[other, 0] != g:          # someone passed the barrier before I wrote
                seen[thread, 1] += 1
        barrier(flags, thread, threads, 2 * g, spins)
        for i in range(work[(g * 7 + thread * 13) % work.shape[0]]):
            acc += np.sqrt(i + acc)
    return acc


@pytest.mark.parametrize("threads,spins", [(2, 0), (2, 3), (3, 0)])
def test_threads_meet_at_every_barrier_and_none_sleeps_forever(threads, spins):
    rounds = 20_000
    flags = new_flags(threads)
    seen = np.zeros((threads, 2), np.int64)
    work = np.random.default_rng(threads).integers(0, 400, 97)
    _meet(flags, 0, 1, 1, 0, np.zeros((1, 2), np.int64), work)          # compile
    workers = [threading.Thread(target=_meet, args=(flags, t, threads, rounds, spins, seen,
                                                     work), daemon=True)
               for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "a thread sleeps forever at a barrier"
    assert seen[:, 1].sum() == 0, "a thread passed a barrier before the others arrived"
