"""The machine's limits for batch-1 generation: where the weights live and how fast they
can be read from there.

At batch 1 every weight is read once per sample, so a kernel can make at most
bandwidth(level) / weight_bytes samples/s, where `level` is the smallest cache that holds
the weights: L1 or L2 (per core), L3 (shared), else DRAM. This module reads the cache
sizes the OS reports and measures single-thread read bandwidth from each level with a
vectorized sum over a buffer sized to sit in it (half of L1/L2, beyond L2 but well inside
L3, far beyond L3 for DRAM). The compute roof is a register-only FMA loop's rate, on one
thread or on a team of threads at once.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

from wavenet_core.generation.cpu.packing import aligned
from wavenet_core.generation.cpu.simd import _JIT, _vfma, _vload, _vsplat, _vstore
from wavenet_core.generation.cpu.split import cache_sizes
from wavenet_core.generation.cpu.weights import WEIGHT_DTYPES, _mac
from wavenet_core.generation.precision import native_precisions

LEVELS = ("L1", "L2", "L3", "DRAM")


@dataclass
class Level:
    name: str
    size: int             # bytes one core can use (L3: the shared size)
    probe_bytes: int      # the buffer read to measure it
    read_gbs: float = 0.0


def cpu_model() -> str:
    """The CPU's model name, with its x86 family and model numbers: a virtual machine may
    name only the vendor line ("AMD EPYC"), and Zen 4 (family 25) and Zen 5 (family 26)
    behind that one name differ a lot in speed, so every figure printed beside it says
    which it was."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu family", "model") and key not in fields:
                fields[key] = value.strip()
            if len(fields) == 3:
                break
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


@njit(**_JIT)
def _read(a, reps):
    """Sum `a` `reps` times with 16-lane loads into 8 independent accumulators (the
    loads, not the adds, limit). The accumulators live across repetitions: nothing but
    loads and adds in the timed loop, or an L1-sized buffer would time the overhead."""
    one = _vsplat(np.float32(1.0))
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = _vsplat(np.float32(0.0))
    n = a.size // 128 * 128
    for _ in range(reps):
        for i in range(0, n, 128):
            s0 = _vfma(_vload(a, i), one, s0)
            s1 = _vfma(_vload(a, i + 16), one, s1)
            s2 = _vfma(_vload(a, i + 32), one, s2)
            s3 = _vfma(_vload(a, i + 48), one, s3)
            s4 = _vfma(_vload(a, i + 64), one, s4)
            s5 = _vfma(_vload(a, i + 80), one, s5)
            s6 = _vfma(_vload(a, i + 96), one, s6)
            s7 = _vfma(_vload(a, i + 112), one, s7)
    out = np.empty(16, np.float32)
    _vstore(out, 0, _vfma(s0, one, _vfma(s1, one, _vfma(s2, one, _vfma(
        s3, one, _vfma(s4, one, _vfma(s5, one, _vfma(s6, one, s7))))))))
    return out.sum()


@njit(**_JIT)
def _fma_chains(iterations):
    """12 independent chains of 16-lane FMAs on registers only: enough in flight to cover
    the FMA latency on every x86 core seen here (4 cycles x 2 pipes)."""
    a = _vsplat(np.float32(0.999999))
    b = _vsplat(np.float32(1e-7))
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = s9 = s10 = s11 = _vsplat(np.float32(1.0))
    for _ in range(iterations):
        s0 = _vfma(s0, a, b)
        s1 = _vfma(s1, a, b)
        s2 = _vfma(s2, a, b)
        s3 = _vfma(s3, a, b)
        s4 = _vfma(s4, a, b)
        s5 = _vfma(s5, a, b)
        s6 = _vfma(s6, a, b)
        s7 = _vfma(s7, a, b)
        s8 = _vfma(s8, a, b)
        s9 = _vfma(s9, a, b)
        s10 = _vfma(s10, a, b)
        s11 = _vfma(s11, a, b)
    out = np.empty(16, np.float32)
    _vstore(out, 0, _vfma(s0, s1, _vfma(s2, s3, _vfma(s4, s5, _vfma(
        s6, s7, _vfma(s8, s9, _vfma(s10, s11, a)))))))
    return out.sum()


FMA_CHAIN_FLOPS = 12 * 16 * 2          # per iteration of _fma_chains


@njit(**_JIT)
def _dot_chains(w, iterations):
    """`_fma_chains` with the dot instruction of w's format (`cpu.weights._mac`: vdpbf16ps
    for bf16a, vpdpbusd for int8a, or their portable paths where the CPU has none)."""
    a = _vsplat(np.float32(0.999999))
    b = _vsplat(np.float32(1e-7))
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = s9 = s10 = s11 = _vsplat(np.float32(1.0))
    for _ in range(iterations):
        s0 = _mac(w, a, b, s0)
        s1 = _mac(w, a, b, s1)
        s2 = _mac(w, a, b, s2)
        s3 = _mac(w, a, b, s3)
        s4 = _mac(w, a, b, s4)
        s5 = _mac(w, a, b, s5)
        s6 = _mac(w, a, b, s6)
        s7 = _mac(w, a, b, s7)
        s8 = _mac(w, a, b, s8)
        s9 = _mac(w, a, b, s9)
        s10 = _mac(w, a, b, s10)
        s11 = _mac(w, a, b, s11)
    out = np.empty(16, np.float32)
    _vstore(out, 0, _mac(w, s0, s1, _mac(w, s2, s3, _mac(w, s4, s5, _mac(
        w, s6, s7, _mac(w, s8, s9, _mac(w, s10, s11, a)))))))
    return out[0]


# multiply-adds per lane of one instruction: the dot formats' roofs count 2 ops for each
DOT_MACS = {"fp32": 1, "bf16": 1, "int8": 1, "bf16a": 2, "int8a": 4}


def _chains(precision: str, flags: frozenset[str] | None = None):
    """(loop(iterations), ops per iteration) of the instruction `precision` multiplies with:
    the float32 FMA for fp32, bf16 and int8 (they widen the weights), the dot
    instruction for bf16a and int8a where the CPU has it. Where it has not, the format runs
    its portable path on FMAs, so the FMA loop is its roof (timing `_dot_chains` there
    measured nothing: LLVM folds the portable chain of constants, 4.9e12 "GOP/s")."""
    if DOT_MACS[precision] == 1 or precision not in native_precisions(flags):
        return _fma_chains, FMA_CHAIN_FLOPS
    w = np.zeros(1, WEIGHT_DTYPES[precision])
    return (lambda n: _dot_chains(w, n)), FMA_CHAIN_FLOPS * DOT_MACS[precision]


def fma_peak_gflops(seconds: float = 0.2, repeats: int = 5, precision: str = "fp32") -> float:
    """Single-thread float32 FMA peak (GFLOP/s): the compute roof. A library GEMM is not
    always near it: MKL on an AMD EPYC (Zen 5) ran at 105 GFLOP/s, under half of this
    loop's 272, and this project's kernel then "beat" the GEMM-based bound by 1.5x.
    `precision` bf16a or int8a: the dot instruction's peak (GOP/s, 2 per multiply-add)."""
    return team_fma_peak_gflops(1, seconds / repeats, repeats, precision)


def _iterations_lasting(seconds: float, loop) -> int:
    """Iterations of `loop` that take about `seconds` on one thread (grown by 4x until one
    run is long enough to time, then scaled)."""
    loop(10)
    iterations = 1 << 12
    while True:
        start = time.perf_counter()
        loop(iterations)
        elapsed = time.perf_counter() - start
        if elapsed > min(seconds, 0.01) or iterations > 1 << 30:
            return max(iterations, int(iterations * seconds / elapsed))
        iterations *= 4


def team_fma_peak_gflops(threads: int, seconds: float = 0.03, repeats: int = 3,
                         precision: str = "fp32") -> float:
    """float32 FMA peak of `threads` threads running the loop at once (GFLOP/s, all of them
    together, best of `repeats` windows of about `seconds`): the compute roof of a row run on
    that many threads. On a shared virtual machine it is not `threads` x the single-thread
    peak, and it changes from moment to moment: two vCPUs of an AMD EPYC made 440-460
    GFLOP/s together in some windows and 240 in others (each at half its single-thread
    rate, as when the two share a physical core), minutes apart. `precision`: the loop of
    that format's instruction (`_chains`; the dot formats count 2 ops per multiply-add)."""
    import threading

    loop, ops = _chains(precision)
    iterations = _iterations_lasting(seconds, loop)
    gate = threading.Barrier(threads + 1)        # cyclic: start and end of each window

    def work():
        for _ in range(repeats):
            gate.wait()
            loop(iterations)                     # releases the GIL (nogil)
            gate.wait()

    team = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for thread in team:
        thread.start()
    best = float("inf")
    for _ in range(repeats):
        gate.wait()
        start = time.perf_counter()
        gate.wait()
        best = min(best, time.perf_counter() - start)
    for thread in team:
        thread.join()
    return threads * iterations * ops / best / 1e9


def read_bandwidth(nbytes: int, seconds: float = 0.15) -> float:
    """Single-thread read bandwidth (GB/s) over a buffer of `nbytes`, best of 3. The buffer
    is 64-byte aligned like the packed weights: loads that straddle two cache lines ran at
    half the rate from L1 (AMD EPYC)."""
    a = aligned(np.random.default_rng(0).random(max(256, nbytes // 4), dtype=np.float32))
    _read(a, 1)
    reps = 1
    while True:
        start = time.perf_counter()
        _read(a, reps)
        elapsed = time.perf_counter() - start
        if elapsed > seconds / 3 or reps > 1 << 20:
            break
        reps *= 4
    best = elapsed
    for _ in range(2):
        start = time.perf_counter()
        _read(a, reps)
        best = min(best, time.perf_counter() - start)
    return a.nbytes * reps / best / 1e9


def team_read_bandwidth(nbytes: int, threads: int, seconds: float = 0.15) -> float:
    """GB/s of `threads` threads at once, each reading its own buffer of `nbytes` (all of
    them together, best of 3): what a shared level (L3, DRAM) gives a team. Two threads of
    the AMD EPYC read 21 GB/s from DRAM together, as much as one alone."""
    import threading

    bufs = [aligned(np.random.default_rng(t).random(max(256, nbytes // 4), dtype=np.float32))
            for t in range(threads)]
    reps = max(1, int(seconds * read_bandwidth(nbytes, seconds / 3) * 1e9 / bufs[0].nbytes))
    best = float("inf")
    for _ in range(3):
        team = [threading.Thread(target=_read, args=(b, reps)) for b in bufs]
        start = time.perf_counter()
        for thread in team:
            thread.start()
        for thread in team:
            thread.join()
        best = min(best, time.perf_counter() - start)
    return threads * bufs[0].nbytes * reps / best / 1e9


def measure_levels() -> list[Level]:
    sizes = cache_sizes()
    l3_probe = min(max(4 * sizes["L2"], 8 << 20), sizes["L3"] // 2)
    levels = [Level("L1", sizes["L1"], sizes["L1"] // 2),
              Level("L2", sizes["L2"], sizes["L2"] // 2),
              Level("L3", sizes["L3"], l3_probe),
              Level("DRAM", 1 << 62, min(max(2 * sizes["L3"], 256 << 20), 2 << 30))]
    for level in levels:
        level.read_gbs = read_bandwidth(level.probe_bytes)
    return levels


def stream_bound(levels: list[Level], nbytes: int) -> tuple[str, float]:
    """(where, samples/s): the most samples/s a batch-1 kernel reading `nbytes` of weights
    per sample can make. Weights that fit in a level are read from it; when they do not,
    the best case is that the part that fits stays there and the rest streams from the
    next level ("L2+L3"), which is still an upper bound."""
    for inner, outer in zip(levels, levels[1:]):
        if nbytes <= inner.size:
            return inner.name, inner.read_gbs * 1e9 / nbytes
        if nbytes <= outer.size or outer is levels[-1]:
            seconds = inner.size / (inner.read_gbs * 1e9) \
                + (nbytes - inner.size) / (outer.read_gbs * 1e9)
            if inner.name == "L1":
                continue
            return f"{inner.name}+{outer.name}", 1 / seconds
    return levels[-1].name, levels[-1].read_gbs * 1e9 / nbytes
