"""Which weight format a backend runs: the `precision` setting and its `auto` rule.

Reduced precision costs accuracy, measured as the held-out NLL increase in bits/sample
(`wavenet precision-cost`, recorded in the checkpoint's `precision_nll_cost` metadata and
in models/MODEL_CARD.md). `auto` on the CPU picks, among the precisions this CPU supports
natively (bf16: AVX512-BF16 or AMX-BF16; int8: AVX-512 VNNI, AVX-VNNI or AMX-INT8) whose
recorded cost is within NLL_BUDGET_BITS, the cheapest, measured on this machine at batch 1
(the kernel's own CPU clock, candidates in turn: `fastest`); fp32 is always a candidate,
and a checkpoint with no recorded cost runs fp32.
(The kernel's bf16 and int8 paths themselves need only AVX2 or AVX-512F: they widen the
weights to float32 and keep float32 activations. bf16a and int8a round the activations
too and multiply with AVX512-BF16's `vdpbf16ps` and VNNI's `vpdpbusd`; elsewhere a
portable path gives the same bits, slowly, so `auto` takes them only where native.
See docs/cpu-kernel.md.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from wavenet_core.audio.lpc import timing_rows

PRECISIONS = ("auto", "fp32", "bf16", "int8", "bf16a", "int8a", "fp16")  # see registry.py
NLL_BUDGET_BITS = 0.02
METADATA_KEY = "precision_nll_cost"
NATIVE_FLAGS = {"bf16": ("avx512_bf16", "amx_bf16"),
                "int8": ("avx512_vnni", "avx_vnni", "amx_int8"),
                # the dot formats' instructions themselves (cpu/dot.py): 512-bit only
                "bf16a": ("avx512_bf16",), "int8a": ("avx512_vnni",)}


def cpu_flags() -> frozenset[str]:
    """The CPU feature flags Linux reports (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_precisions(flags: frozenset[str] | None = None) -> list[str]:
    flags = cpu_flags() if flags is None else flags
    return ["fp32"] + [p for p, needs in NATIVE_FLAGS.items() if flags & set(needs)]


def recorded_costs(path) -> dict[str, float]:
    """The checkpoint's measured NLL cost per precision ({} when none is recorded)."""
    from wavenet_core.model.checkpoint import read_metadata

    raw = read_metadata(path).get(METADATA_KEY)
    if not raw:
        return {}
    try:
        costs = json.loads(raw)
        return {str(k): float(v) for k, v in costs.items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def cpu_candidates(costs: dict[str, float], flags: frozenset[str] | None = None) -> list[str]:
    """The precisions `auto` may choose: native here and within the NLL budget."""
    return [p for p in native_precisions(flags)
            if p == "fp32" or costs.get(p, float("inf")) <= NLL_BUDGET_BITS]


def fastest(backends: list, steps: int = 512, rounds: int = 3):
    """The backend that makes `steps` samples for one stream at the least cost: each
    candidate timed once per round, in turn (a busy moment of the machine hits them
    alike), best of the rounds. The cost is the backend's own CPU clock where it keeps one
    (`kernel_cpu_s`: every thread's CPU inside its kernel calls, which another process
    taking the core does not inflate), else the wall clock. Timed by the wall clock alone
    on shared cores, a preempted fast candidate lost to one 2.3x slower at batch 16
    (docs/performance.md, "Which precision a server runs")."""
    runs = []
    for backend in backends:
        backend.warmup()
        state = backend.new_state(1)
        backend.open_slot(state, 0, seed=0)
        m = getattr(backend, "mel_channels", 0)
        local = np.zeros((1, steps, m), np.float32) if m else None
        runs.append((backend, state, local, timing_rows(backend.config, 1, steps)))
    best = [float("inf")] * len(backends)
    for _ in range(rounds):
        for i, run in enumerate(runs):
            best[i] = min(best[i], _cost(*run, steps))
    return backends[best.index(min(best))]


def _cost(backend, state, local, rows: dict, steps: int) -> float:
    """Seconds one timed call cost: the backend's kernel CPU clock if it has one, else the
    wall clock."""
    def clock() -> float:
        return backend.kernel_cpu_s if hasattr(backend, "kernel_cpu_s") else time.perf_counter()

    start = clock()
    backend.generate(state, [0], steps, local, **rows)
    return clock() - start
