"""A spin barrier for the threads that split one batch's layers (cpu_backend.py, split mode).

Each thread owns one counter, 128 bytes from the others. Arriving at barrier number g, a
thread publishes g (a release store: everything it wrote before is visible to whoever sees
g) and spins (acquire loads, `pause`) until every other counter has reached g. Counters only
grow, so a thread that is already one barrier ahead never blocks the others. After a long
spin it calls sched_yield, so a descheduled partner (two cores shared with the event loop)
costs a time slice, not a livelock. x86-64 Linux only: elsewhere the split mode is off.
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

from wavenet_core.generation.cpu_simd import _JIT, _element_pointer

SPLIT_SUPPORTED = platform.machine() in ("x86_64", "AMD64") and sys.platform == "linux"
STRIDE = 16                     # int64s between two threads' counters (128 bytes)
SPINS_BEFORE_YIELD = 4096

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
def _store_release(typingctx, arr, index, value):
    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()
    return types.none(arr, index, value), codegen


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
def _sched_yield(typingctx):
    """The sched_yield system call (x86-64 Linux number 24), without a libc pointer, so the
    kernel stays cacheable by numba."""
    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(_I64, [_I64])
        builder.asm(fnty, "syscall", "={rax},{rax},~{rcx},~{r11},~{memory}",
                    [ir.Constant(_I64, 24)], True)
        return context.get_dummy_value()
    return types.none(), codegen


@njit(**_JIT)
def barrier(flags, thread, threads, generation):
    """Wait until all `threads` threads have arrived at barrier `generation` (>= 1)."""
    if threads == 1:
        return
    _store_release(flags, thread * STRIDE, generation)
    for other in range(threads):
        if other == thread:
            continue
        spins = 0
        while _load_acquire(flags, other * STRIDE) < generation:
            _cpu_relax()
            spins += 1
            if spins == SPINS_BEFORE_YIELD:
                _sched_yield()
                spins = 0


def new_flags(threads: int) -> np.ndarray:
    """Zeroed counters for one call's team of threads."""
    return np.zeros(max(1, threads) * STRIDE, np.int64)
