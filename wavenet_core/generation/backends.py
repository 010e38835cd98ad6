"""Choosing a generation backend by name.

Every backend offers the same surface, which is all the server uses:
  new_state(num_slots) -> GenerationState
  open_slot(state, slot, history=None, history_local=None, speaker=0, seed=0, temperature=1.0)
  generate(state, slots, num_steps, local=None) -> int64 codes [len(slots), num_steps]
  step_logits(state, slots, inputs, local=None) -> logits (teacher forcing, for tests)
and the attributes `name` and `device`. `state.free_slot(slot)` frees a slot.

"auto" picks the CUDA-graph backend on a GPU and the compiled CPU backend otherwise,
falling back to plain PyTorch when neither is available.
"""

from __future__ import annotations

import torch

from wavenet_core.generation.torch_backend import TorchBackend
from wavenet_core.model import WaveNet

BACKENDS = ("auto", "torch", "cpu", "cuda-graph")


def resolve_device(device: str | None = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def make_backend(model: WaveNet, name: str = "auto", device: str | None = "auto"):
    dev = resolve_device(device)
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "auto":
        name = "cuda-graph" if dev.type == "cuda" else "cpu"
        try:
            return make_backend(model, name, str(dev))
        except ImportError:
            return TorchBackend(model, dev)
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
