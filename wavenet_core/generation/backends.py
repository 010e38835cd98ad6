"""Choosing a generation backend by name.

Every backend offers the same surface, which is all the server uses:
  new_state(num_slots) -> GenerationState
  open_slot(state, slot, history=None, history_local=None, speaker=0, seed=0, temperature=1.0)
  generate(state, slots, num_steps, local=None) -> int64 codes [len(slots), num_steps]
  step_logits(state, slots, inputs, local=None) -> logits (teacher forcing, for tests)
and the attributes `name` and `device`. `state.free_slot(slot)` frees a slot.

"auto" picks the triton backend on a GPU (the CUDA-graph backend when Triton is not
installed) and the compiled CPU backend otherwise, falling back to plain PyTorch when
neither is available.

`precision` chooses the weights' number format where a backend offers a choice: the
triton backend takes auto (fp16 on CUDA), fp32 or fp16; the others run float32.
"""

from __future__ import annotations

import importlib.util
import warnings

import torch

from wavenet_core.generation.torch_backend import TorchBackend
from wavenet_core.model import WaveNet

BACKENDS = ("auto", "torch", "cpu", "cuda-graph", "triton")
PRECISIONS = ("auto", "fp32", "fp16")


def resolve_device(device: str | None = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def make_backend(model: WaveNet, name: str = "auto", device: str | None = "auto",
                 precision: str = "auto"):
    dev = resolve_device(device)
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of "
                         f"{', '.join(PRECISIONS)}")
    if name == "auto":
        if dev.type == "cuda":
            try:
                backend = make_backend(model, "triton", str(dev), precision)
                backend.warmup()           # compiles now: a failure falls back here
                return backend
            except Exception as exc:  # no Triton, or a kernel this GPU cannot run
                warnings.warn(f"triton backend unavailable ({exc!r}); using cuda-graph",
                              stacklevel=2)
                return make_backend(model, "cuda-graph", str(dev))
        try:
            return make_backend(model, "cpu", str(dev), precision)
        except ImportError:
            return TorchBackend(model, dev)
    if name == "triton":
        if importlib.util.find_spec("triton") is None:
            raise ImportError("the 'triton' backend needs the triton package")
        from wavenet_core.generation.triton_backend import TritonBackend

        return TritonBackend(model, dev, precision=precision)
    if precision not in ("auto", "fp32"):
        raise ValueError(f"the {name!r} backend runs in fp32 only (precision {precision!r})")
    if name == "torch":
        return TorchBackend(model, dev)
    if name == "cpu":
        if dev.type != "cpu":
            raise ValueError("the compiled 'cpu' backend runs on the CPU only")
        from wavenet_core.generation.cpu_backend import CpuBackend

        return CpuBackend(model)
    if dev.type != "cuda":
        raise ValueError("the 'cuda-graph' backend needs a CUDA device")
    from wavenet_core.generation.cuda_graph_backend import CudaGraphBackend

    return CudaGraphBackend(model, dev)
