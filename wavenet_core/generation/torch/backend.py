"""Fast WaveNet generation in plain PyTorch: one matrix step per layer, batched over slots.

Runs on any device and every config option; it is the per-step reference for the other
backends. One step for a slot at position p with input vector x (embedding row, or
value * input_weight + input_bias), per layer l (dilation d, kernel k, ring length w):
1. taps = [ring[(p - j*d) % w] for j = k-1 .. 1] (oldest first), then ring[p % w] = x;
2. h = [taps..., x] @ gate_weight[l].T + gate_bias[l] (+ speaker bias + local @ local_weight);
3. z = tanh(h[:G]) * sigmoid(h[G:]);  o = z @ out_weight[l].T (+ out_bias[l]);
4. x = (x + o[:C]) * residual_scale;  skip += o[C:].
Then head: relu(relu(skip) @ head_weight.T + head_bias) @ logits_weight.T + logits_bias,
and sampling (sampling.py: softmax codes, or mixture / Gaussian samples fed back as the
next input). Eager PyTorch pays a few microseconds per op, which is what caps this backend.
An excitation model (docs/excitation.md) consumes samples x: each step pushes x into the
slot's `lpc_history`, predicts p = lpc.predict(history, the sample's coefficient row),
feeds embedding[mu-law code of x] + p * prediction_input, and samples x' = p + e.
"""

from __future__ import annotations

import numpy as np
import torch

from wavenet_core.audio.lpc import predict
from wavenet_core.audio.mulaw import mulaw_encode_exact
from wavenet_core.generation.packing import pack_weights
from wavenet_core.generation.sampling import next_sample
from wavenet_core.generation.shaping import check_shaping
from wavenet_core.generation.state import GenerationState, StateSlots
from wavenet_core.model.wavenet import WaveNet


class TorchBackend(StateSlots):
    name = "torch"

    def __init__(self, model: WaveNet, device: str | torch.device | None = None):
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.config = model.config
        w = pack_weights(self.model)
        self.w = w
        self.gate_weight_t = w.gate_weight.transpose(1, 2).contiguous()   # [L, kC, 2G]
        self.out_weight_t = w.out_weight.transpose(1, 2).contiguous()     # [L, G, C+S]
        layers, two_g = w.gate_bias.shape
        self.local_weight_t = (None if w.local_weight is None else
                               w.local_weight.permute(2, 0, 1).reshape(-1, layers * two_g))
        cfg = self.config
        spans = [(cfg.kernel_size - 1) * d for d in cfg.dilations]
        offsets = [0]
        for span in spans[:-1]:
            offsets.append(offsets[-1] + span)
        # per layer, the taps' distances back in time, oldest first: (k-1)d .. d
        back = [[j * d for j in range(cfg.kernel_size - 1, 0, -1)] for d in cfg.dilations]
        self.back = torch.tensor(back, device=self.device)                # [L, k-1]
        self.spans = torch.tensor(spans, device=self.device).unsqueeze(1)  # [L, 1]
        self.offsets = torch.tensor(offsets, device=self.device).unsqueeze(1)

    def warmup(self) -> None:
        """One short generate on one slot (on CUDA this also builds the graph)."""
        state = self.new_state(1)
        self.open_slot(state, 0)
        m = self.config.mel_channels
        local = torch.zeros(1, 2, m, device=self.device) if m else None
        lpc = (torch.zeros(1, 2, self.config.lpc_order, device=self.device)
               if self.config.lpc_excitation else None)
        self.generate(state, [0], 2, local, lpc)

    def _layer_bias(self, state: GenerationState, slots: torch.Tensor) -> torch.Tensor:
        """Filter/gate bias per slot and layer [n, L, 2C], the speaker folded in."""
        bias = self.w.gate_bias.unsqueeze(0).expand(len(slots), -1, -1)
        if self.w.speaker_bias is not None:
            bias = bias + self.w.speaker_bias[state.speaker[slots]]
        return bias

    @torch.no_grad()
    def step_logits(self, state: GenerationState, slots, inputs: torch.Tensor,
                    local: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                    active: torch.Tensor | None = None,
                    lpc: torch.Tensor | None = None) -> torch.Tensor:
        """Consume one input per slot (a code, or a sample in [-1, 1] for scalar input and
        excitation models, these with the predicted sample's coefficient rows `lpc`
        [n, lpc_order]) -> outputs [n, output_channels] (logits or distribution
        parameters); advances them.

        With an `active` mask [n] (the CUDA graph runs every slot), inactive rows
        compute but leave their queues and positions untouched. No host syncs here.
        """
        return self._step(state, slots, inputs, local, bias, active, lpc)[0]

    def _excitation_input(self, state: GenerationState, slots: torch.Tensor,
                          values: torch.Tensor, lpc: torch.Tensor | None,
                          keep: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """An excitation model's first-layer inputs [n, C] and predictions p [n]."""
        if lpc is None:
            raise ValueError("an excitation model (excitation 'lpc') needs `lpc` rows")
        values = values.to(self.device, torch.float32)
        old = state.lpc_history[slots]
        history = torch.cat([values.unsqueeze(1), old[:, :-1]], 1)
        state.lpc_history[slots] = history if keep is None else torch.where(keep, history, old)
        p = predict(history, torch.as_tensor(lpc, dtype=torch.float32, device=self.device))
        codes = mulaw_encode_exact(values, self.config.classes)
        return self.w.embedding[codes] + p.unsqueeze(1) * self.w.prediction_input, p

    def _step(self, state, slots, inputs, local=None, bias=None, active=None, lpc=None):
        """step_logits -> (outputs, excitation models' predictions p [n] or None)."""
        slots = torch.as_tensor(slots, dtype=torch.int64, device=self.device)
        w, c, g = self.w, self.config.residual_channels, self.config.gate_width
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
        index = (slots.view(-1, 1, 1) * state.ring.size(1) + self.offsets
                 + (pos.view(-1, 1, 1) - self.back) % self.spans)          # [n, L, k-1]
        keep = None if active is None else active.unsqueeze(1)
        p = None
        if self.config.lpc_excitation:
            x, p = self._excitation_input(state, slots, inputs, lpc, keep)
        else:
            x = self._input_vectors(inputs.to(self.device))
        skip, scale = None, self.config.residual_scale
        for layer in range(len(state.dilations)):
            cols = index[:, layer]
            taps = ring[cols]                                              # [n, k-1, C]
            oldest = taps[:, 0]
            ring[cols[:, 0]] = x if keep is None else torch.where(keep, x, oldest)
            h = torch.addmm(bias[:, layer], torch.cat([taps.flatten(1), x], 1),
                            self.gate_weight_t[layer])
            z = torch.tanh(h[:, :g]) * torch.sigmoid(h[:, g:])
            out = (z @ self.out_weight_t[layer] if w.out_bias is None
                   else torch.addmm(w.out_bias[layer], z, self.out_weight_t[layer]))
            x = x + out[:, :c]
            if scale != 1.0:
                x = x * scale
            skip = out[:, c:] if skip is None else skip + out[:, c:]
        state.positions[slots] = pos + (1 if active is None else active.to(pos.dtype))
        hidden = torch.relu(torch.addmm(w.head_bias, torch.relu(skip), w.head_weight.T))
        return torch.addmm(w.logits_bias, hidden, w.logits_weight.T), p

    def _input_vectors(self, inputs: torch.Tensor) -> torch.Tensor:
        w = self.w
        if w.embedding is not None:
            return w.embedding[inputs]
        return inputs.to(torch.float32).unsqueeze(1) * w.input_weight + w.input_bias

    @torch.no_grad()
    def generate(self, state: GenerationState, slots, num_steps: int,
                 local: torch.Tensor | None = None, lpc=None, shaping=None) -> np.ndarray:
        """Sample `num_steps` codes for every slot in `slots` -> int64 array [n, num_steps].

        `local` [n, num_steps, M] conditions each produced sample (None without mel), an
        excitation model's `lpc` [n, num_steps, lpc_order] predicts it (lpc.lpc_window).
        `shaping` [n, num_steps, 2]: each sample's (temperature, floor)
        (shaping.shaping_window), in place of the slots' temperatures. Scalar-output and
        excitation models give 16-bit PCM codes (sampling.scalar_codes) and feed the
        unrounded sample back.
        """
        slots = torch.as_tensor(slots, dtype=torch.int64, device=self.device)
        out = torch.empty(len(slots), num_steps, dtype=torch.int64, device=self.device)
        bias = self._layer_bias(state, slots)
        temperature, seed = state.temperature[slots], state.seed[slots]
        if local is not None:
            local = torch.as_tensor(local, dtype=torch.float32, device=self.device)
        if lpc is not None:
            lpc = torch.as_tensor(lpc, dtype=torch.float32, device=self.device)
        floor = None
        if shaping is not None:
            shaping = check_shaping(shaping, self.config, len(slots), num_steps)
            shaping = torch.as_tensor(shaping, device=self.device)
        scalar = self.config.scalar_io or self.config.lpc_excitation
        for k in range(num_steps):
            counters = state.positions[slots]
            inputs = state.next_value[slots] if scalar else state.next_input[slots]
            logits, p = self._step(state, slots, inputs,
                                   None if local is None else local[:, k], bias,
                                   lpc=None if lpc is None else lpc[:, k])
            if shaping is not None:
                temperature, floor = shaping[:, k, 0], shaping[:, k, 1]
            fed, codes = next_sample(logits, self.config, temperature, seed, counters, p,
                                     floor)
            (state.next_value if scalar else state.next_input)[slots] = fed
            out[:, k] = codes
        return out.cpu().numpy()
