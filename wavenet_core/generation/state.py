"""GenerationState: the caller-owned cache of Fast WaveNet generation, one row per slot.

For every layer l the state keeps a ring buffer of that layer's last `w_l = (k-1) * d_l`
inputs (k = kernel_size, d_l = its dilation). All layers share one tensor `ring`
[slots, sum(w), C]; layer l owns columns offsets[l] .. offsets[l] + w_l. A slot that has
consumed p inputs finds layer l's input from time p - j*d_l (j = 1 .. k-1) at column
offsets[l] + (p - j*d_l) % w_l; the oldest (j = k-1) sits at offsets[l] + p % w_l, where
the current input is then written: k-1 reads and one write per layer per sample.

The model holds no per-stream state; everything a stream needs lives in its row here
(ring, position, next input, speaker, seed, temperature), so admitting, dropping or
reordering streams is an index operation on the slot dimension. An excitation model's row
also holds `lpc_history`, the last `lpc_order` samples it consumed, newest first (the
linear prediction's input, wavenet_core/audio/lpc.py; zero width for other models).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from wavenet_core.audio.lpc import prediction
from wavenet_core.audio.mulaw import mulaw_encode_exact, silence_code
from wavenet_core.model.config import WaveNetConfig
from wavenet_core.model.wavenet import WaveNet


@dataclass
class GenerationState:
    ring: torch.Tensor         # [slots, sum(dilations), residual_channels] float32
    positions: torch.Tensor    # [slots] int64: inputs consumed (also the RNG counter)
    next_input: torch.Tensor   # [slots] int64: the code fed at the next step
    next_value: torch.Tensor   # [slots] float32: the sample fed next (scalar-input models)
    speaker: torch.Tensor      # [slots] int64
    seed: torch.Tensor         # [slots] int64 (32-bit values)
    temperature: torch.Tensor  # [slots] float32; 0 = greedy
    live: np.ndarray           # [slots] bool, host side: which slots hold a stream
    lpc_history: torch.Tensor  # [slots, lpc_order] float32, newest first (excitation models)
    dilations: tuple[int, ...]
    offsets: tuple[int, ...]
    spans: tuple[int, ...]     # (kernel_size - 1) * dilation: each layer's ring length
    backend_buffers: dict = field(default_factory=dict)  # a backend's static buffers

    @classmethod
    def allocate(cls, config: WaveNetConfig, num_slots: int,
                 device: str | torch.device = "cpu") -> GenerationState:
        dilations = config.dilations
        spans = tuple((config.kernel_size - 1) * d for d in dilations)
        offsets = tuple(int(o) for o in np.cumsum((0,) + spans[:-1]))
        long = dict(dtype=torch.int64, device=device)
        return cls(
            ring=torch.zeros(num_slots, sum(spans), config.residual_channels,
                             dtype=torch.float32, device=device),
            positions=torch.zeros(num_slots, **long),
            next_input=torch.full((num_slots,), silence_code(config.classes), **long),
            next_value=torch.zeros(num_slots, dtype=torch.float32, device=device),
            speaker=torch.zeros(num_slots, **long),
            seed=torch.zeros(num_slots, **long),
            temperature=torch.ones(num_slots, dtype=torch.float32, device=device),
            live=np.zeros(num_slots, dtype=bool),
            lpc_history=torch.zeros(num_slots, config.lpc_order if config.lpc_excitation else 0,
                                    dtype=torch.float32, device=device),
            dilations=dilations,
            offsets=offsets,
            spans=spans,
        )

    @property
    def num_slots(self) -> int:
        return self.ring.size(0)

    def free_slot(self, slot: int) -> None:
        self.live[slot] = False

    @torch.no_grad()
    def open_slot(self, model: WaveNet, slot: int, *, history=None, history_local=None,
                  history_lpc=None, speaker: int = 0, seed: int = 0,
                  temperature: float = 1.0) -> None:
        """Start a stream in `slot`: zeroed queues, or primed with `history` codes
        (samples in [-1, 1] for scalar-input and excitation models).

        Priming consumes history[:-1] teacher-forced (history[-1] becomes the next input),
        leaving the queues exactly as stepping those samples one by one would. Only the
        last receptive_field samples matter, so only those are run through the model.
        `history_local` [len(history) - 1, M] conditions history[1:] (see model.py), and
        an excitation model's `history_lpc` [len(history) - 1, lpc_order] predicts them.
        """
        self.ring[slot].zero_()
        self.lpc_history[slot].zero_()
        self.speaker[slot] = int(speaker)
        self.seed[slot] = int(seed)
        self.temperature[slot] = float(temperature)
        self.live[slot] = True
        self.next_value[slot] = 0.0
        if history is None or len(history) == 0:
            self.positions[slot] = 0
            self.next_input[slot] = silence_code(model.config.classes)
            return
        scalar = model.config.scalar_io or model.config.lpc_excitation
        history = torch.as_tensor(np.asarray(history), device=self.ring.device,
                                  dtype=torch.float32 if scalar else torch.int64)
        consumed = len(history) - 1
        self.positions[slot] = consumed
        if scalar:
            self.next_value[slot] = history[-1]
        else:
            self.next_input[slot] = history[-1]
        if consumed == 0:
            return
        keep = min(consumed, model.receptive_field - 1)
        codes = history[consumed - keep:consumed].unsqueeze(0)
        pred = None
        if model.config.lpc_excitation:
            codes, pred = self._prime_excitation(model.config, slot, history, history_lpc)
            codes, pred = codes[:, consumed - keep:], pred[:, consumed - keep:]
        local = None
        if history_local is not None:
            local_t = torch.as_tensor(np.asarray(history_local), dtype=torch.float32,
                                      device=self.ring.device)
            local = local_t[consumed - keep:consumed].T.unsqueeze(0)
        spk = self.speaker[slot:slot + 1] if model.speaker_embedding is not None else None
        _, inputs = model.run_layers(codes, local, spk, pad=True, keep_inputs=True,
                                     prediction=pred)
        first = consumed - keep
        for layer_in, offset, span in zip(inputs, self.offsets, self.spans):
            times = torch.arange(max(0, consumed - span), consumed, device=self.ring.device)
            self.ring[slot, offset + times % span] = layer_in[0, :, times - first].T

    def _prime_excitation(self, config: WaveNetConfig, slot: int, history: torch.Tensor,
                          history_lpc) -> tuple[torch.Tensor, torch.Tensor]:
        """An excitation model's primed stream: its LPC history (the consumed samples,
        newest first) and the forward's codes and predictions [1, consumed]."""
        if history_lpc is None:
            raise ValueError("an excitation model's history needs `history_lpc` rows")
        rows = np.asarray(history_lpc, dtype=np.float32)
        x = history.cpu().numpy().astype(np.float32)
        consumed, order = len(x) - 1, config.lpc_order
        # lpc.prediction's p[n] predicts x[n] from x[:n]: input i predicts x[i + 1]
        p = prediction(x, np.concatenate([np.zeros((1, order), np.float32), rows[:consumed]]))
        recent = x[:consumed][::-1][:order].copy()
        self.lpc_history[slot, :len(recent)] = torch.from_numpy(recent).to(self.ring.device)
        device = self.ring.device
        return (mulaw_encode_exact(history[:consumed], config.classes).unsqueeze(0),
                torch.from_numpy(p[1:]).to(device).unsqueeze(0))


class StateSlots:
    """The slot methods of a backend whose state is a `GenerationState` (the backend has
    `config`, `device` and `model`): the caller owns the state, the backend only fills it."""

    def new_state(self, num_slots: int) -> GenerationState:
        return GenerationState.allocate(self.config, num_slots, self.device)

    def open_slot(self, state: GenerationState, slot: int, **kwargs) -> None:
        state.open_slot(self.model, slot, **kwargs)

    def free_slot(self, state: GenerationState, slot: int) -> None:
        state.free_slot(slot)
