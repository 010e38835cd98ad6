"""Fast WaveNet generation in plain PyTorch: one matrix step per layer, batched over slots.

Runs on any device. Per step and layer: read x(t-d) from the ring, write x(t), one fused
filter+gate matmul on [x(t-d), x(t)], tanh * sigmoid, one fused residual+skip matmul.
Eager PyTorch pays a few microseconds per op, which is what caps this backend.
"""

from __future__ import annotations

import numpy as np
import torch

from wavenet_core.generation.packing import pack_weights
from wavenet_core.generation.sampling import counter_uniform, sample_codes
from wavenet_core.generation.state import GenerationState
from wavenet_core.model import WaveNet


class TorchBackend:
    name = "torch"

    def __init__(self, model: WaveNet, device: str | torch.device | None = None):
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.config = model.config
        w = pack_weights(self.model)
        self.w = w
        self.gate_weight_t = w.gate_weight.transpose(1, 2).contiguous()   # [L, 2C, 2C]
        self.out_weight_t = w.out_weight.transpose(1, 2).contiguous()     # [L, C, C+S]
        layers, two_c = w.gate_bias.shape
        self.local_weight_t = (None if w.local_weight is None else
                               w.local_weight.permute(2, 0, 1).reshape(-1, layers * two_c))
        self.dilations = torch.tensor(self.config.dilations, device=self.device)
        offsets = [0]
        for d in self.config.dilations[:-1]:
            offsets.append(offsets[-1] + d)
        self.offsets = torch.tensor(offsets, device=self.device)

    def new_state(self, num_slots: int) -> GenerationState:
        return GenerationState.allocate(self.config, num_slots, self.device)

    def open_slot(self, state: GenerationState, slot: int, **kwargs) -> None:
        state.open_slot(self.model, slot, **kwargs)

    def free_slot(self, state: GenerationState, slot: int) -> None:
        state.free_slot(slot)

    def warmup(self) -> None:
        """One short generate on one slot (on CUDA this also builds the graph)."""
        state = self.new_state(1)
        self.open_slot(state, 0)
        m = self.config.mel_channels
        local = torch.zeros(1, 2, m, device=self.device) if m else None
        self.generate(state, [0], 2, local)

    def _layer_bias(self, state: GenerationState, slots: torch.Tensor) -> torch.Tensor:
        """Filter/gate bias per slot and layer [n, L, 2C], the speaker folded in."""
        bias = self.w.gate_bias.unsqueeze(0).expand(len(slots), -1, -1)
        if self.w.speaker_bias is not None:
            bias = bias + self.w.speaker_bias[state.speaker[slots]]
        return bias

    @torch.no_grad()
    def step_logits(self, state: GenerationState, slots, inputs: torch.Tensor,
                    local: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                    active: torch.Tensor | None = None) -> torch.Tensor:
        """Consume one input code per slot -> logits [n, classes]; advances the slots.

        With an `active` mask [n] (the CUDA graph runs every slot), inactive rows
        compute but leave their queues and positions untouched. No host syncs here.
        """
        slots = torch.as_tensor(slots, dtype=torch.int64, device=self.device)
        w, c = self.w, self.config.residual_channels
        if bias is None:
            bias = self._layer_bias(state, slots)
        if local is not None:
            if self.local_weight_t is None:
                raise ValueError("this model takes no local conditioning")
            bias = bias + (local.to(self.device) @ self.local_weight_t).view_as(bias)
        elif self.local_weight_t is not None:
            raise ValueError("this model is locally conditioned: pass `local`")
        ring = state.ring.view(-1, c)
        pos = state.positions[slots]
        index = (slots.unsqueeze(1) * state.ring.size(1) + self.offsets
                 + pos.unsqueeze(1) % self.dilations)                       # [n, L]
        x = w.embedding[inputs.to(self.device)]
        keep = None if active is None else active.unsqueeze(1)
        skip = None
        for layer in range(len(state.dilations)):
            col = index[:, layer]
            previous = ring[col]
            ring[col] = x if keep is None else torch.where(keep, x, previous)
            h = torch.addmm(bias[:, layer], torch.cat([previous, x], 1), self.gate_weight_t[layer])
            z = torch.tanh(h[:, :c]) * torch.sigmoid(h[:, c:])
            out = z @ self.out_weight_t[layer]
            x = x + out[:, :c]
            skip = out[:, c:] if skip is None else skip + out[:, c:]
        state.positions[slots] = pos + (1 if active is None else active.to(pos.dtype))
        hidden = torch.relu(torch.addmm(w.head_bias, torch.relu(skip), w.head_weight.T))
        return torch.addmm(w.logits_bias, hidden, w.logits_weight.T)

    @torch.no_grad()
    def generate(self, state: GenerationState, slots, num_steps: int,
                 local: torch.Tensor | None = None) -> np.ndarray:
        """Sample `num_steps` codes for every slot in `slots` -> int64 array [n, num_steps].

        `local` [n, num_steps, M] conditions each produced sample (None without mel).
        """
        slots = torch.as_tensor(slots, dtype=torch.int64, device=self.device)
        out = torch.empty(len(slots), num_steps, dtype=torch.int64, device=self.device)
        bias = self._layer_bias(state, slots)
        temperature, seed = state.temperature[slots], state.seed[slots]
        if local is not None:
            local = torch.as_tensor(local, dtype=torch.float32, device=self.device)
        for k in range(num_steps):
            counters = state.positions[slots]
            logits = self.step_logits(state, slots, state.next_input[slots],
                                      None if local is None else local[:, k], bias)
            codes = sample_codes(logits, temperature, counter_uniform(seed, counters))
            state.next_input[slots] = codes
            out[:, k] = codes
        return out.cpu().numpy()
