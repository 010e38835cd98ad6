"""Work buffers the fused training step (fused.py) keeps between steps.

Why: a step of the bundled vocoder's shape allocates and frees about 800 MB of layer
buffers; the C allocator hands much of it back to the OS and gets it again as fresh pages,
each faulted in and zeroed (7% of the step here). The pool keeps freed buffers and hands
out the smallest free one large enough (layers differ in length, so any layer reuses any
longer layer's), as a contiguous view of the shape asked for. A buffer must be given back
only when nothing reads it any more; one never given back is simply garbage collected.
One pool per thread.
"""

from __future__ import annotations

import bisect
import threading

import torch

_local = threading.local()


def _free() -> dict[torch.dtype, list[tuple[int, int, torch.Tensor]]]:
    """Per dtype, the kept buffers as (size, id, flat tensor), sorted by size."""
    if not hasattr(_local, "free"):
        _local.free = {}
    return _local.free


def take(shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialised contiguous tensor of `shape` (a view of a kept buffer if one is
    large enough)."""
    shape = tuple(int(s) for s in shape)
    size = 1
    for s in shape:
        size *= s
    free = _free().setdefault(dtype, [])
    at = bisect.bisect_left(free, (size,))
    if at == len(free):
        return torch.empty(size, dtype=dtype).view(shape)
    return free.pop(at)[2][:size].view(shape)


def give(*tensors: torch.Tensor | None) -> None:
    """Keep these tensors' buffers (each one `take` returned) for later `take`s."""
    for t in tensors:
        if t is not None:
            base = (t if t._base is None else t._base).view(-1)
            bisect.insort(_free().setdefault(t.dtype, []), (base.numel(), id(base), base))
