"""Sabotaged copies of the triton kernel, to prove that the kernel's tests can fail.

Each mutant is the kernel's own source with one bug written in (a text replacement that
must match exactly once, so a change to the kernel that moves the code fails loudly here
rather than leaving a mutant identical to the kernel):
- "ring offset": every ring read and write one column off (invisible from zeroed rings;
  the one ring head of every model, the wide ones' too);
- "tap order": the oldest tap and x(t) swapped at the filter/gate dots (in both the
  one-block kernel and the channel-block loop, which fp32 config B runs);
- "bias": the filter half of the per-slot gate bias dropped.
"""

from __future__ import annotations

import importlib.util
import inspect
import tempfile
from pathlib import Path

MUTANTS = {
    "ring offset": [("head = (pos_k % RING_LCM).to(tl.int32)",
                     "head = ((pos_k + 1) % RING_LCM).to(tl.int32)")],
    "tap order": [("past = previous.to(wdt)", "past = x.to(wdt)"),
                  ("now = x.to(wdt)", "now = previous.to(wdt)"),
                  ("tap_at = tl.where(j < KS - 1,", "tap_at = tl.where(j > 0,")],
    "bias": [("hf = tl.load(b_at, mask=live[:, None], other=0.0)",
              "hf = tl.zeros([BB, GP], dtype=tl.float32)")],
}


def mutant_source(name: str) -> str:
    from wavenet_core.generation.triton import kernel

    source = inspect.getsource(kernel)
    for old, new in MUTANTS[name]:
        count = source.count(old)
        if count != 1:
            raise AssertionError(f"mutant {name!r}: {old!r} occurs {count} times in "
                                 f"kernel.py (expected once): update tests/helpers/"
                                 f"kernel_mutants.py to the kernel's code")
        source = source.replace(old, new)
    return source


def mutant_kernel(name: str):
    """The mutant `wavenet_chunk`, wrapped as the backend wraps the kernel (`triton.jit`:
    compiled on CUDA, interpreted elsewhere). Triton reads a kernel's source from its file,
    so the mutant is written to one."""
    import triton

    folder = Path(tempfile.mkdtemp(prefix="kernel_mutant_"))
    path = folder / f"mutant_{name.replace(' ', '_')}.py"
    path.write_text(mutant_source(name))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return triton.jit(module.wavenet_chunk)
