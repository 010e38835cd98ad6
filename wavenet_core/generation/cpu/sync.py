"""A barrier for the threads that split one batch's layers (cpu/backend.py, split mode).

Each thread owns a counter and a count of the threads that may sleep on it, 128 bytes from
the others'. Arriving at barrier number g, a thread publishes g (an atomic exchange: a full
fence, so everything it wrote before is visible to whoever sees g) and, if anyone may sleep
on its counter, wakes them. Waiting for a partner, a thread spins (acquire loads, `pause`)
for a few tens of microseconds, which covers every wait between running threads; if the
partner still has not arrived it is descheduled (the machine is busier than the team), so
the waiter adds itself to the partner's sleeper count, looks at the counter once more and
sleeps in the kernel on it (futex: only while it still holds that value) instead of
burning the core that the partner, the event loop or another process needs; awake, it
takes itself off the count. Only a sleeper removes itself: an earlier version had the
publisher clear a sleep flag, which could erase the flag of a waiter already at the next
barrier and leave it asleep for good (seen once: two threads asleep on each other).
Counters only grow, so a thread one barrier ahead never blocks the others. x86-64 Linux
only (raw system calls): elsewhere the split mode is off.
"""

from __future__ import annotations

import platform
import sys

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from wavenet_core.generation.cpu.simd import _JIT, _element_pointer

SPLIT_SUPPORTED = platform.machine() in ("x86_64", "AMD64") and sys.platform == "linux"
STRIDE = 16                     # int64s between two threads' words (128 bytes)
SLEEPERS = 8                    # the sleeper count's offset inside a thread's 128 bytes
SPINS_BEFORE_SLEEP = 1024       # pause ~ 40-140 cycles: tens of microseconds
FUTEX_WAIT_PRIVATE = 128
FUTEX_WAKE_PRIVATE = 129
SYS_FUTEX = 202

_I64 = ir.IntType(64)
if SPLIT_SUPPORTED:
    llvm.initialize_native_asmparser()      # for the `syscall` inline assembly


@intrinsic
def _load_acquire(typingctx, arr, index):
    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], *args)
        return builder.load_atomic(ptr, "acquire", 8)
    return types.int64(arr, index), codegen


@intrinsic
def _exchange(typingctx, arr, index, value):
    """Atomically set arr[index] = value (sequentially consistent: a full fence)."""
    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.atomic_rmw("xchg", ptr, args[2], "seq_cst")
    return types.int64(arr, index, value), codegen


@intrinsic
def _fetch_add(typingctx, arr, index, delta):
    """Atomically arr[index] += delta (sequentially consistent: a full fence)."""
    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")
    return types.int64(arr, index, types.int64), codegen


@intrinsic
def _cpu_relax(typingctx):
    """x86 `pause`: tells the core this is a spin loop."""
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                            "llvm.x86.sse2.pause")
        builder.call(fn, [])
        return context.get_dummy_value()
    return types.none(), codegen


@intrinsic
def _futex(typingctx, arr, index, op, value):
    """futex(&arr[index] (its low 32 bits), op, value, no timeout): a raw system call, without
    a libc pointer, so the kernel stays cacheable by numba."""
    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        addr = builder.ptrtoint(ptr, _I64)
        fnty = ir.FunctionType(_I64, [_I64] * 5)
        return builder.asm(fnty, "syscall",
                           "={rax},{rax},{rdi},{rsi},{rdx},{r10},~{rcx},~{r11},~{memory}",
                           [ir.Constant(_I64, SYS_FUTEX), addr, args[2], args[3],
                            ir.Constant(_I64, 0)], True)
    return types.int64(arr, index, types.int64, types.int64), codegen


@njit(**_JIT)
def barrier(flags, thread, threads, generation, spins_before_sleep=SPINS_BEFORE_SLEEP):
    """Wait until all `threads` threads have arrived at barrier `generation` (>= 1)."""
    if threads == 1:
        return
    mine = thread * STRIDE
    _exchange(flags, mine, generation)
    if _load_acquire(flags, mine + SLEEPERS) > 0:
        _futex(flags, mine, FUTEX_WAKE_PRIVATE, 1 << 30)
    for other in range(threads):
        if other == thread:
            continue
        theirs = other * STRIDE
        spins = 0
        while True:
            seen = _load_acquire(flags, theirs)
            if seen >= generation:
                break
            if spins < spins_before_sleep:
                _cpu_relax()
                spins += 1
                continue
            _fetch_add(flags, theirs + SLEEPERS, 1)
            seen = _load_acquire(flags, theirs)
            if seen < generation:     # sleeps only while the counter is still `seen`
                _futex(flags, theirs, FUTEX_WAIT_PRIVATE, seen & 0xFFFFFFFF)
            _fetch_add(flags, theirs + SLEEPERS, -1)


def new_flags(threads: int) -> np.ndarray:
    """Zeroed counters and sleep words for one call's team of threads."""
    return np.zeros(max(1, threads) * STRIDE, np.int64)
