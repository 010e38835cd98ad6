"""Choosing a generation backend by name, and the surface every backend offers.

"auto" picks the triton backend on a GPU (the CUDA-graph backend when Triton is not
installed or its kernel fails to build) and the compiled CPU backend otherwise, falling
back to plain PyTorch when neither is available. Models with options beyond the seed's
design (converted r9y9 WaveNets) run where `capabilities.BACKEND_OPTIONS` says; a backend
refuses the options it lacks by name, and "auto" picks, among triton on a GPU, the cpu
backend and torch, the first that runs the model.

`precision` chooses the weights' number format where a backend offers a choice: the
compiled CPU backend takes fp32, bf16, int8, bf16a or int8a (auto: precision.py's rule, using the
checkpoint's recorded NLL costs); the triton backend fp32 or fp16 (auto: fp16 on CUDA);
the others run float32.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from wavenet_core.generation.capabilities import require, unsupported
from wavenet_core.generation.precision import PRECISIONS, cpu_candidates, fastest
from wavenet_core.generation.state import GenerationState
from wavenet_core.generation.torch.backend import TorchBackend
from wavenet_core.model.wavenet import WaveNet

BACKENDS = ("auto", "torch", "cpu", "cuda-graph", "triton")
BACKEND_PRECISIONS = {"cpu": ("auto", "fp32", "bf16", "int8", "bf16a", "int8a"),
                      "triton": ("auto", "fp32", "fp16"),
                      "torch": ("auto", "fp32"), "cuda-graph": ("auto", "fp32")}


@runtime_checkable
class GenerationBackend(Protocol):
    """What the server and the tools use of a backend. The caller owns the state."""

    name: str
    device: torch.device

    def new_state(self, num_slots: int) -> GenerationState: ...

    def open_slot(self, state: GenerationState, slot: int, *, history=None,
                  history_local=None, speaker: int = 0, seed: int = 0,
                  temperature: float = 1.0) -> None: ...

    def free_slot(self, state: GenerationState, slot: int) -> None: ...

    def generate(self, state: GenerationState, slots, num_steps: int,
                 local=None) -> np.ndarray | torch.Tensor:
        """Sample num_steps codes per slot -> [len(slots), num_steps] int64. Backends that
        run them also take `lpc=` rows (excitation models, docs/excitation.md) and
        `shaping=` rows (voicing-shaped sampling, docs/voicing.md)."""

    def step_logits(self, state: GenerationState, slots, inputs,
                    local=None) -> torch.Tensor:
        """Teacher forcing: one given input per slot -> logits [n, classes]."""

    def warmup(self) -> None:
        """Compile / capture / touch everything so the first request pays nothing."""


def resolve_device(device: str | None = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def make_backend(model: WaveNet, name: str = "auto", device: str | None = "auto",
                 precision: str = "auto", nll_costs: dict[str, float] | None = None,
                 threads: int | None = None) -> GenerationBackend:
    """A backend for `model`. `nll_costs` (precision.recorded_costs of its checkpoint)
    lets precision "auto" choose a reduced-precision CPU format within the NLL budget."""
    dev = resolve_device(device)
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of "
                         f"{', '.join(PRECISIONS)}")
    if name == "auto":
        if dev.type == "cuda":
            if unsupported(model.config, "triton"):
                return TorchBackend(model, dev)
            fallback = "torch" if unsupported(model.config, "cuda-graph") else "cuda-graph"
            try:
                backend = make_backend(model, "triton", str(dev), precision)
                backend.warmup()           # compiles now: a failure falls back here
                return backend
            except Exception as exc:  # no Triton, or a kernel this GPU cannot run
                warnings.warn(f"triton backend unavailable ({exc!r}); using {fallback}",
                              stacklevel=2)
                return make_backend(model, fallback, str(dev))
        if unsupported(model.config, "cpu"):
            return TorchBackend(model, dev)
        try:
            return make_backend(model, "cpu", str(dev), precision, nll_costs, threads)
        except ImportError:
            return TorchBackend(model, dev)
    require(model.config, name)
    if precision not in BACKEND_PRECISIONS[name]:
        raise ValueError(f"the {name!r} backend takes precision "
                         f"{', '.join(BACKEND_PRECISIONS[name])}, not {precision!r}")
    if name == "triton":
        if importlib.util.find_spec("triton") is None:
            raise ImportError("the 'triton' backend needs the triton package")
        from wavenet_core.generation.triton.backend import TritonBackend

        return TritonBackend(model, dev, precision=precision)
    if name == "torch":
        return TorchBackend(model, dev)
    if name == "cpu":
        if dev.type != "cpu":
            raise ValueError("the compiled 'cpu' backend runs on the CPU only")
        from wavenet_core.generation.cpu.backend import CpuBackend

        if precision != "auto":
            return CpuBackend(model, threads=threads, precision=precision)
        options = cpu_candidates(nll_costs or {})
        backends = [CpuBackend(model, threads=threads, precision=p) for p in options]
        return backends[0] if len(backends) == 1 else fastest(backends)
    if dev.type != "cuda":
        raise ValueError("the 'cuda-graph' backend needs a CUDA device")
    from wavenet_core.generation.torch.cuda_graph import CudaGraphBackend

    return CudaGraphBackend(model, dev)
