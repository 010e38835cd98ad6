"""Compiled CPU generation backend: the whole chunk loop in one numba kernel, float32.

One call of `_run_rows` produces K samples for a group of slots: embedding, every layer
(ring read/write, fused filter+gate matrix on [x(t-d), x(t)], tanh * sigmoid, fused
residual+skip matrix), the head and the sampling, with no Python in between. The slots of
a call are split into contiguous groups, one per worker thread; the kernel releases the
GIL, so the groups run in parallel.

Matrix code. Every matrix is stored transposed ([inputs, outputs]), its outputs padded to
a multiple of 16 and cut into contiguous, 64-byte aligned panels 64 outputs wide. The
micro-kernels keep a block of 4 rows x 64 outputs (16 vector registers of 16 floats) in
registers for the whole input loop: one panel load feeds 4 rows, and at batch 1 the
weights stream sequentially from the cache at its full bandwidth. They are written with
explicit 16-lane vector intrinsics (`_vload`, `_vfma`, ...) defined below, so LLVM
neither needs nor gets a say in the vectorization.

Batch invariance, bitwise. Each output element is one chain of fused multiply-adds over
the inputs in their natural order, started from the bias (`llvm.fma`, no reassociation),
whatever the row block, the number of slots in the call, the thread or the chunk size. The
other float code is compiled without the `reassoc` fast-math flag. The local (mel)
projections are computed inside the kernel per slot the same way, for a sub-chunk of
steps at a time, before that sub-chunk's step loop.

tanh and sigmoid use a rational approximation (Eigen's float tanh; sigmoid(x) =
0.5 + 0.5 tanh(x / 2)), accurate to ~3e-7 and vectorizable, unlike libm's scalar exp.
Sampling reproduces `sampling.counter_uniform` with the same 32-bit integer operations
(bitwise equal uniforms) and `sample_codes`' inverse-CDF rule.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

from wavenet_core.generation.cpu_kernels import _run_rows
from wavenet_core.generation.cpu_simd import LANES, PANEL
from wavenet_core.generation.packing import pack_weights
from wavenet_core.generation.state import GenerationState
from wavenet_core.model import WaveNet

# -- packing -----------------------------------------------------------------------------

def _pad(n: int) -> int:
    return -(-n // LANES) * LANES


def _aligned(a: np.ndarray) -> np.ndarray:
    """A 64-byte aligned, C-contiguous float32 copy of `a`."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    buf = np.zeros(a.size + LANES, np.float32)
    skip = (-buf.ctypes.data % 64) // 4
    out = buf[skip:skip + a.size].reshape(a.shape)
    out[...] = a
    return out


def _panels(w: np.ndarray) -> np.ndarray:
    """[n_in, n_out] (n_out a multiple of 16) -> flat panels of 64 outputs, then the tail."""
    n_out = w.shape[1]
    cuts = list(range(0, n_out, PANEL)) + [n_out]
    return np.concatenate([w[:, a:b].ravel() for a, b in zip(cuts[:-1], cuts[1:])])


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    """[0, n) cut into `parts` contiguous, nearly equal ranges."""
    bounds = [n * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


class CpuBackend:
    """Compiled (numba) CPU generation backend; see the module docstring.

    `threads` worker threads share the slots of each call (default: numba's thread
    count, the number of cores); a call never uses more threads than it has slots.
    """

    name = "cpu"

    def __init__(self, model: WaveNet, threads: int | None = None):
        self.device = torch.device("cpu")
        self.model = model.to(self.device).eval()
        self.config = cfg = model.config
        self.threads = max(1, int(threads or numba.config.NUMBA_NUM_THREADS))
        w = pack_weights(self.model)

        def host(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float32)

        c, s, classes = cfg.residual_channels, cfg.skip_channels, cfg.classes
        layers = cfg.num_layers
        self.cp, self.sp, qp = _pad(c), _pad(s), _pad(classes)
        cp, sp = self.cp, self.sp
        both = np.r_[np.arange(c), cp + np.arange(c)]          # real rows of a [2cp] vector
        res_skip = np.r_[np.arange(c), cp + np.arange(s)]      # real rows of a [cp+sp] vector

        gate = np.zeros((layers, 2 * cp, 2 * cp), np.float32)
        gate[:, both[:, None], both[None, :]] = host(w.gate_weight).transpose(0, 2, 1)
        out = np.zeros((layers, cp, cp + sp), np.float32)
        out[:, :c, res_skip] = host(w.out_weight).transpose(0, 2, 1)
        head = np.zeros((sp, sp), np.float32)
        head[:s, :s] = host(w.head_weight).T
        logit = np.zeros((sp, qp), np.float32)
        logit[:s, :classes] = host(w.logits_weight).T
        # One buffer in the order of use: gate 0, out 0, gate 1, ..., head, logits, so
        # that at batch 1 the weights are one sequential stream.
        parts = [p for g, o in zip(gate, out) for p in (_panels(g), _panels(o))]
        parts += [_panels(head), _panels(logit)]
        starts = np.cumsum([0] + [p.size for p in parts])
        self.wbuf = _aligned(np.concatenate(parts))
        self.gate_off = np.ascontiguousarray(starts[0:2 * layers:2], np.int64)
        self.out_off = np.ascontiguousarray(starts[1:2 * layers:2], np.int64)
        self.head_off, self.logit_off = int(starts[-3]), int(starts[-2])
        self.head_b = _aligned(np.r_[host(w.head_bias), np.zeros(sp - s, np.float32)])
        self.logit_b = _aligned(np.r_[host(w.logits_bias), np.zeros(qp - classes, np.float32)])
        self.embedding = np.ascontiguousarray(host(w.embedding))              # [classes, C]
        self.gate_b = np.zeros((layers, 2 * cp), np.float32)
        self.gate_b[:, both] = host(w.gate_bias)
        self.speaker_bias = None
        if w.speaker_bias is not None:
            self.speaker_bias = np.zeros((w.speaker_bias.shape[0], layers, 2 * cp), np.float32)
            self.speaker_bias[:, :, both] = host(w.speaker_bias)
        self.mel_channels = m = 0 if w.local_weight is None else int(w.local_weight.shape[2])
        local = np.zeros((layers, m, 2 * cp), np.float32)
        if m:
            local[:, :, both] = host(w.local_weight).transpose(0, 2, 1)
        self.local_p = _aligned(np.concatenate([_panels(lw) for lw in local]) if m else
                                np.zeros(0, np.float32))
        self.offsets = np.asarray(np.cumsum((0,) + cfg.dilations[:-1]), np.int64)
        self.dilations = np.asarray(cfg.dilations, np.int64)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- interface ------------------------------------------------------------------

    def new_state(self, num_slots: int) -> GenerationState:
        return GenerationState.allocate(self.config, num_slots, self.device)

    def open_slot(self, state: GenerationState, slot: int, **kwargs) -> None:
        state.open_slot(self.model, slot, **kwargs)

    @torch.no_grad()
    def step_logits(self, state: GenerationState, slots, inputs, local=None) -> torch.Tensor:
        """Consume one given input code per slot -> logits [n, classes]; advances the slots."""
        slots = self._slots(slots)
        inputs = np.asarray(torch.as_tensor(inputs).cpu(), dtype=np.int64)
        if local is not None:
            local = torch.as_tensor(local, dtype=torch.float32).cpu().reshape(len(slots), 1, -1)
        return torch.from_numpy(self.teacher_force(state, slots, inputs.reshape(-1, 1),
                                                   local)[:, 0])

    @torch.no_grad()
    def teacher_force(self, state: GenerationState, slots, inputs, local=None) -> np.ndarray:
        """Consume given codes [n, K] (local [n, K, M]) -> logits [n, K, classes]."""
        slots = self._slots(slots)
        inputs = np.ascontiguousarray(np.asarray(inputs, dtype=np.int64))
        if inputs.ndim != 2 or inputs.shape[0] != len(slots):
            raise ValueError(f"inputs must be [{len(slots)}, K], got {inputs.shape}")
        logits = np.empty(inputs.shape + (self.config.classes,), np.float32)
        self._run(state, slots, inputs.shape[1], local, inputs, logits)
        return logits

    @torch.no_grad()
    def generate(self, state: GenerationState, slots, num_steps: int,
                 local=None) -> np.ndarray:
        """Sample `num_steps` codes for every slot in `slots` -> int64 array [n, num_steps].

        `local` [n, num_steps, M] conditions each produced sample (None without mel).
        """
        slots = self._slots(slots)
        forced = np.zeros((len(slots), 0), np.int64)
        logits = np.zeros((len(slots), 0, 0), np.float32)
        return self._run(state, slots, int(num_steps), local, forced, logits)

    def warmup(self) -> None:
        """Compile (or load from numba's cache) and run a tiny generate and teacher pass,
        on one slot and on a block of four, so the first request pays nothing."""
        state = self.new_state(5)
        for slot in range(5):
            self.open_slot(state, slot, seed=slot, temperature=float(slot % 2))
        m = self.mel_channels
        self.generate(state, [0], 3, np.zeros((1, 3, m), np.float32) if m else None)
        self.generate(state, list(range(5)), 3, np.zeros((5, 3, m), np.float32) if m else None)
        self.step_logits(state, [0], [0], np.zeros((1, m), np.float32) if m else None)

    def close(self) -> None:
        """Stop the worker threads (a later call starts them again)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None

    # -- internals ------------------------------------------------------------------

    @staticmethod
    def _slots(slots) -> np.ndarray:
        if isinstance(slots, torch.Tensor):
            slots = slots.cpu().numpy()
        return np.ascontiguousarray(np.asarray(slots, dtype=np.int64).reshape(-1))

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max(1, self.threads - 1),
                                                thread_name_prefix="wavenet-cpu")
            return self._pool

    def _bias(self, state: GenerationState, slots: np.ndarray) -> np.ndarray:
        """Padded gate bias per slot and layer [n, L, 2cp], the speaker folded in."""
        bias = np.broadcast_to(self.gate_b, (len(slots),) + self.gate_b.shape)
        if self.speaker_bias is not None:
            bias = bias + self.speaker_bias[state.speaker.numpy()[slots]]
        return np.ascontiguousarray(bias, dtype=np.float32)

    def _run(self, state: GenerationState, slots: np.ndarray, num_steps: int, local,
             forced: np.ndarray, logits: np.ndarray) -> np.ndarray:
        n = len(slots)
        if state.ring.device.type != "cpu":
            raise ValueError("the cpu backend needs a GenerationState on the CPU")
        if n and (slots.min() < 0 or slots.max() >= state.num_slots):
            raise IndexError(f"slot out of range for a state of {state.num_slots} slots")
        if len(np.unique(slots)) != n:
            raise ValueError("each slot may appear only once per call")
        m = self.mel_channels
        if m:
            if local is None:
                raise ValueError("this model is locally conditioned: pass `local`")
            if isinstance(local, torch.Tensor):
                local = local.detach().cpu().numpy()
            local = np.ascontiguousarray(local, dtype=np.float32)
            if local.shape != (n, num_steps, m):
                raise ValueError(f"local must be [{n}, {num_steps}, {m}], got {local.shape}")
        elif local is not None:
            raise ValueError("this model takes no local conditioning")
        else:
            local = np.zeros((n, 0, 0), np.float32)
        codes = np.zeros((n, num_steps), np.int64)
        if n == 0 or num_steps == 0:
            return codes
        classes = self.config.classes
        first = forced if forced.shape[1] else state.next_input.numpy()[slots]
        if first.min() < 0 or first.max() >= classes:
            raise ValueError(f"input codes must be in [0, {classes})")
        views = (state.ring.numpy(), state.positions.numpy(), state.next_input.numpy(),
                 state.seed.numpy(), state.temperature.numpy())
        bias = self._bias(state, slots)
        weights = (self.offsets, self.dilations, self.embedding, self.wbuf, self.gate_off,
                   self.out_off, self.head_off, self.logit_off, self.head_b, self.logit_b,
                   self.local_p)

        def run(lo: int, hi: int) -> None:
            _run_rows(slots[lo:hi], num_steps, *views, *weights, bias[lo:hi].reshape(-1),
                      local[lo:hi].reshape(-1), forced[lo:hi], codes[lo:hi], logits[lo:hi],
                      self.cp, self.sp, m)

        groups = _split(n, min(self.threads, n))
        futures = [self._executor().submit(run, lo, hi) for lo, hi in groups[1:]]
        try:
            run(*groups[0])                 # the first group runs on the calling thread
        finally:
            for future in futures:
                future.result()
        return codes
