"""The triton kernel as a callable for a device: `triton.jit` on CUDA, the Triton
interpreter on the CPU (tests), with the interpreter's tl.dot made row-invariant."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import torch


def jitted_kernel(device: torch.device):
    """The kernel, jitted for CUDA or interpreted on the CPU.

    Triton decides at its import whether its own library functions (tl.sigmoid, tl.argmax,
    ...) are compiled or interpreted, from TRITON_INTERPRET. So the first import in a
    process decides for the whole process: on the CPU we set TRITON_INTERPRET=1 before it
    (a process without CUDA never compiles Triton anyway), and a mismatch is an error.
    """
    interpret = device.type != "cuda"
    if interpret and "triton" not in sys.modules:
        os.environ["TRITON_INTERPRET"] = "1"
    import triton
    from triton import knobs

    if bool(knobs.runtime.interpret) != interpret:
        raise RuntimeError(
            f"Triton was imported {'without' if interpret else 'with'} TRITON_INTERPRET=1 in "
            f"this process, so the triton backend cannot run on {device} here (on the CPU, "
            f"set TRITON_INTERPRET=1 before anything, torch included, imports Triton)")
    from wavenet_core.generation.triton.kernel import wavenet_chunk

    if interpret:
        _interpret_dots_row_by_row()
    return triton.jit(wavenet_chunk)


def _interpret_dots_row_by_row() -> None:
    """Make the interpreter's tl.dot sum every row the same way, wherever it sits.

    The interpreter computes tl.dot with numpy's matmul, and OpenBLAS on an AMD EPYC (Zen 5)
    gives a row a different summation order depending on its position among the 16 rows
    (permuting the rows changed their results bitwise), so a stream's samples depended on
    its neighbours. A GPU's dot has no such dependence, and the kernel's batch invariance
    (tests/generation/triton/test_triton_*.py) is the GPU's property. einsum runs one loop for every
    output element."""
    from triton.runtime import interpreter

    builder = getattr(interpreter, "InterpreterBuilder", None)
    original = getattr(builder, "create_dot", None)
    if original is None or not hasattr(interpreter, "TensorHandle"):
        warnings.warn("this Triton's interpreter has no InterpreterBuilder.create_dot: its "
                      "tl.dot keeps numpy's matmul", stacklevel=2)
        return
    if getattr(original, "row_invariant", False):
        return

    def create_dot(self, a, b, d, *args, **kwargs):
        if a.dtype.primitive_bitwidth == 8 or b.dtype.primitive_bitwidth == 8:
            return original(self, a, b, d, *args, **kwargs)
        product = np.einsum("...ik,...kn->...in", a.data, b.data, dtype=d.data.dtype)
        return interpreter.TensorHandle(product + d.data, d.dtype.scalar)

    create_dot.row_invariant = True
    builder.create_dot = create_dot
