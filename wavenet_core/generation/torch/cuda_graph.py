"""The PyTorch step captured once as a CUDA graph and replayed K times per chunk.

Eager PyTorch launches ~10 kernels per layer per sample from Python; a CUDA graph
replays the whole step (every layer, the head and sampling) as one launch. A graph has
static addresses, so the step runs over *every* slot of the state with an `active` mask
(inactive rows leave their queues alone), reads its per-step conditioning from a static
chunk buffer at a device-side step index, and writes its codes into a static output
buffer. The counter-based RNG needs no generator state, so it is graph-safe as it is.

On a machine without CUDA the same masked step runs eagerly (`use_graph=False`), which
is how the CPU-only test suite checks this backend's logic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wavenet_core.generation.capabilities import require
from wavenet_core.generation.sampling import counter_uniform, sample_codes
from wavenet_core.generation.state import GenerationState
from wavenet_core.generation.torch.backend import TorchBackend
from wavenet_core.model.wavenet import WaveNet


@dataclass
class _Static:
    slots: torch.Tensor        # arange(num_slots)
    active: torch.Tensor       # [slots] bool
    bias: torch.Tensor         # [slots, L, 2C]
    local: torch.Tensor | None  # [slots, max_chunk, M]
    codes: torch.Tensor        # [slots, max_chunk] int64
    step: torch.Tensor         # [1] int64, index of the step within the chunk
    graph: torch.cuda.CUDAGraph | None = None


class CudaGraphBackend(TorchBackend):
    name = "cuda-graph"

    def __init__(self, model: WaveNet, device: str | torch.device = "cuda",
                 max_chunk: int = 4096, use_graph: bool | None = None):
        require(model.config, "cuda-graph")
        super().__init__(model, device)
        self.max_chunk = max_chunk
        self.use_graph = self.device.type == "cuda" if use_graph is None else use_graph

    def new_state(self, num_slots: int) -> GenerationState:
        state = super().new_state(num_slots)
        layers, two_c = self.w.gate_bias.shape
        dev = self.device
        static = _Static(
            slots=torch.arange(num_slots, device=dev),
            active=torch.zeros(num_slots, dtype=torch.bool, device=dev),
            bias=torch.zeros(num_slots, layers, two_c, device=dev),
            local=(torch.zeros(num_slots, self.max_chunk, self.config.mel_channels, device=dev)
                   if self.config.local_conditioning else None),
            codes=torch.zeros(num_slots, self.max_chunk, dtype=torch.int64, device=dev),
            step=torch.zeros(1, dtype=torch.int64, device=dev),
        )
        state.backend_buffers["cuda_graph"] = static
        if self.use_graph:
            self._capture(state, static)
        return state

    @torch.no_grad()
    def _graph_step(self, state: GenerationState, s: _Static) -> None:
        """One sample for every slot; only active rows change state. Graph-safe."""
        counters = state.positions.clone()
        local = None if s.local is None else s.local.index_select(1, s.step).squeeze(1)
        logits = self.step_logits(state, s.slots, state.next_input, local, s.bias, s.active)
        codes = sample_codes(logits, state.temperature, counter_uniform(state.seed, counters))
        state.next_input.copy_(torch.where(s.active, codes, state.next_input))
        s.codes.index_copy_(1, s.step, codes.unsqueeze(1))
        s.step.add_(1)

    def _capture(self, state: GenerationState, s: _Static) -> None:
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):       # warm-up (allocations, cuBLAS handles) off the graph
                self._graph_step(state, s)
        torch.cuda.current_stream(self.device).wait_stream(side)
        s.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(s.graph):
            self._graph_step(state, s)
        # the warm-up ran with every slot inactive but advanced the step index: reset
        s.step.zero_()
        state.ring.zero_()
        state.positions.zero_()

    @torch.no_grad()
    def generate(self, state: GenerationState, slots, num_steps: int,
                 local: torch.Tensor | None = None) -> np.ndarray:
        s: _Static = state.backend_buffers["cuda_graph"]
        slots_t = torch.as_tensor(slots, dtype=torch.int64, device=self.device)
        s.active.zero_()
        s.active[slots_t] = True
        s.bias.copy_(self._layer_bias(state, s.slots))
        if local is not None:
            local = torch.as_tensor(local, dtype=torch.float32, device=self.device)
        out = np.empty((len(slots_t), num_steps), dtype=np.int64)
        for start in range(0, num_steps, self.max_chunk):
            k = min(self.max_chunk, num_steps - start)
            if s.local is not None:
                if local is None:
                    raise ValueError("this model is locally conditioned: pass `local`")
                s.local[slots_t, :k] = local[:, start:start + k]
            s.step.zero_()
            for _ in range(k):
                if s.graph is not None:
                    s.graph.replay()
                else:
                    self._graph_step(state, s)
            out[:, start:start + k] = s.codes[slots_t, :k].cpu().numpy()
        return out
