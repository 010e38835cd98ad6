"""Compiled CPU generation backend: the whole chunk loop in one numba kernel, float32.

One call of `_run_rows` produces K samples for a group of slots: embedding, every layer
(ring read/write, fused filter+gate matrix on [x(t-d), x(t)], tanh * sigmoid, fused
residual+skip matrix), the head and the sampling, with no Python in between. The slots of
a request are split into contiguous groups, one per worker thread; the kernel releases the
GIL, so the groups run in parallel.

Batch invariance, bitwise. Every matrix product is written in "axpy" form
(y[o] += W[i, o] * x[i], the inner loop over the contiguous output channel, which LLVM
vectorizes) and compiled *without* the `reassoc` fast-math flag, so each output element
is one sequential fused-multiply-add chain over the inputs in a fixed order. How rows are
blocked (pairs of slots share each weight load), how many slots share the call, which
thread runs them and how the chunk is cut cannot change a single bit of a row's result.
The local (mel) projections are computed inside the kernel per slot the same way, for a
sub-chunk of steps at a time, before the step loop of that sub-chunk.

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
from numba import njit

from wavenet_core.generation.packing import pack_weights
from wavenet_core.generation.sampling import MASK32, MIX_1, MIX_2, SEED_SALT
from wavenet_core.generation.state import GenerationState
from wavenet_core.model import WaveNet

# Every fast-math flag except `reassoc` (and `arcp`/`afn`): sums keep their written order,
# which is what makes a row's arithmetic independent of the batch. `contract` lets
# `y + w * x` become one FMA everywhere (vector body and scalar remainder alike).
FASTMATH = {"nnan", "ninf", "nsz", "contract"}

SUB_STEPS = 32
"""Steps per sub-chunk for which the local projections are precomputed."""

_F = np.float32
_ZERO = _F(0.0)
_ONE = _F(1.0)
_HALF = _F(0.5)
_CLAMP = _F(7.90531110763549805)
_A1 = _F(4.89352455891786e-03)
_A3 = _F(6.37261928875436e-04)
_A5 = _F(1.48572235717979e-05)
_A7 = _F(5.12229709037114e-08)
_A9 = _F(-8.60467152213735e-11)
_A11 = _F(2.00018790482477e-13)
_A13 = _F(-2.76076847742355e-16)
_B0 = _F(4.89352518554385e-03)
_B2 = _F(2.26843463243900e-03)
_B4 = _F(1.18534705686654e-04)
_B6 = _F(1.19825839466702e-06)
_U24 = _F(1.0 / (1 << 24))

_MASK = np.uint64(MASK32)
_SALT = np.uint64(SEED_SALT)
_M1 = np.uint64(MIX_1)
_M2 = np.uint64(MIX_2)
_S8 = np.uint64(8)
_S15 = np.uint64(15)
_S16 = np.uint64(16)

_JIT = dict(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy")


@njit(inline="always", **_JIT)
def _tanh(x):
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = _A13
    p = p * x2 + _A11
    p = p * x2 + _A9
    p = p * x2 + _A7
    p = p * x2 + _A5
    p = p * x2 + _A3
    p = p * x2 + _A1
    q = _B6
    q = q * x2 + _B4
    q = q * x2 + _B2
    q = q * x2 + _B0
    return x * p / q


@njit(inline="always", **_JIT)
def _mix32(x):
    x = x ^ (x >> _S16)
    x = (x * _M1) & _MASK
    x = x ^ (x >> _S15)
    x = (x * _M2) & _MASK
    return x ^ (x >> _S16)


@njit(**_JIT)
def counter_uniform_one(seed, counter):
    """`sampling.counter_uniform` for one (seed, counter) pair, same integer operations."""
    s = np.uint64(seed) & _MASK
    c = np.uint64(counter) & _MASK
    h = _mix32(_mix32(s ^ _SALT) ^ c)
    return _F(np.int64(h >> _S8)) * _U24


@njit(inline="always", **_JIT)
def _acc_rows(w, x, y, n):
    """y[r, o] += sum_i w[i, o] * x[r, i] for r < n, each element one sequential FMA chain.

    Pairs of rows share the weight loads; the input loop is unrolled by 4 without
    changing the order of the sum, so the remainder paths give the same bits.
    """
    n_in = w.shape[0]
    n_out = w.shape[1]
    n4 = n_in - n_in % 4
    r = 0
    while r + 2 <= n:
        for i in range(0, n4, 4):
            a0 = x[r, i]
            a1 = x[r, i + 1]
            a2 = x[r, i + 2]
            a3 = x[r, i + 3]
            b0 = x[r + 1, i]
            b1 = x[r + 1, i + 1]
            b2 = x[r + 1, i + 2]
            b3 = x[r + 1, i + 3]
            for o in range(n_out):
                w0 = w[i, o]
                w1 = w[i + 1, o]
                w2 = w[i + 2, o]
                w3 = w[i + 3, o]
                y[r, o] = y[r, o] + w0 * a0 + w1 * a1 + w2 * a2 + w3 * a3
                y[r + 1, o] = y[r + 1, o] + w0 * b0 + w1 * b1 + w2 * b2 + w3 * b3
        for i in range(n4, n_in):
            a0 = x[r, i]
            b0 = x[r + 1, i]
            for o in range(n_out):
                w0 = w[i, o]
                y[r, o] = y[r, o] + w0 * a0
                y[r + 1, o] = y[r + 1, o] + w0 * b0
        r += 2
    if r < n:
        for i in range(0, n4, 4):
            a0 = x[r, i]
            a1 = x[r, i + 1]
            a2 = x[r, i + 2]
            a3 = x[r, i + 3]
            for o in range(n_out):
                y[r, o] = (y[r, o] + w[i, o] * a0 + w[i + 1, o] * a1
                           + w[i + 2, o] * a2 + w[i + 3, o] * a3)
        for i in range(n4, n_in):
            a0 = x[r, i]
            for o in range(n_out):
                y[r, o] = y[r, o] + w[i, o] * a0


@njit(**_JIT)
def _run_rows(slots, num_steps, ring, positions, next_input, seed, temperature,
              offsets, dilations, emb, gate_w, out_w, head_w, head_b, logit_w, logit_b,
              bias, local_w, local, forced, codes_out, logits_out):
    """Run `num_steps` steps for the slots `slots` (one group, one thread).

    bias [n, L, 2C]: gate bias with the speaker folded in. local [n, K, M] (M = 0 without
    mel), local_w [L, M, 2C]. forced [n, K] teacher-forced inputs (K = 0: sample and feed
    back). codes_out [n, K] receives the samples, logits_out [n, K, classes] the logits
    (its K = 0 skips storing them).
    """
    n = slots.shape[0]
    num_layers = gate_w.shape[0]
    c = emb.shape[1]
    c2 = 2 * c
    s = head_w.shape[0]
    classes = logit_w.shape[1]
    m = local_w.shape[1]
    teacher = forced.shape[1] > 0
    keep_logits = logits_out.shape[1] > 0

    xs = np.zeros((n, c + s), np.float32)      # residual stream x, then the skip sum
    gin = np.zeros((n, c2), np.float32)        # [x(t-d), x(t)]
    h = np.zeros((n, c2), np.float32)
    z = np.zeros((n, c), np.float32)
    act = np.zeros((n, s), np.float32)
    hid = np.zeros((n, s), np.float32)
    lg = np.zeros((n, classes), np.float32)
    probs = np.zeros(classes, np.float32)
    pos = np.zeros(n, np.int64)
    sub = min(SUB_STEPS, max(num_steps, 1))
    proj = np.zeros((n, num_layers, sub if m > 0 else 1, c2), np.float32)

    for k0 in range(0, num_steps, sub):
        kn = min(sub, num_steps - k0)
        if m > 0:
            for r in range(n):
                for layer in range(num_layers):
                    p = proj[r, layer]
                    for kk in range(kn):
                        for o in range(c2):
                            p[kk, o] = bias[r, layer, o]
                    _acc_rows(local_w[layer], local[r, k0:k0 + kn], p, kn)
        for kk in range(kn):
            k = k0 + kk
            for r in range(n):
                slot = slots[r]
                code = forced[r, k] if teacher else next_input[slot]
                pos[r] = positions[slot]
                for o in range(c):
                    xs[r, o] = emb[code, o]
                for o in range(c, c + s):
                    xs[r, o] = _ZERO
            for layer in range(num_layers):
                d = dilations[layer]
                for r in range(n):
                    col = offsets[layer] + pos[r] % d
                    q = ring[slots[r], col]
                    for o in range(c):
                        v = xs[r, o]
                        gin[r, o] = q[o]
                        gin[r, c + o] = v
                        q[o] = v
                    if m > 0:
                        for o in range(c2):
                            h[r, o] = proj[r, layer, kk, o]
                    else:
                        for o in range(c2):
                            h[r, o] = bias[r, layer, o]
                _acc_rows(gate_w[layer], gin, h, n)
                for r in range(n):
                    for o in range(c):
                        z[r, o] = _tanh(h[r, o]) * (_HALF + _HALF * _tanh(_HALF * h[r, c + o]))
                _acc_rows(out_w[layer], z, xs, n)
            for r in range(n):
                for o in range(s):
                    act[r, o] = max(xs[r, c + o], _ZERO)
                    hid[r, o] = head_b[o]
            _acc_rows(head_w, act, hid, n)
            for r in range(n):
                for o in range(s):
                    hid[r, o] = max(hid[r, o], _ZERO)
                for o in range(classes):
                    lg[r, o] = logit_b[o]
            _acc_rows(logit_w, hid, lg, n)
            for r in range(n):
                slot = slots[r]
                positions[slot] = pos[r] + 1
                if keep_logits:
                    for o in range(classes):
                        logits_out[r, k, o] = lg[r, o]
                if teacher:
                    continue
                t = temperature[slot]
                best = 0
                top = lg[r, 0]
                for o in range(1, classes):
                    if lg[r, o] > top:
                        top = lg[r, o]
                        best = o
                if t > _ZERO:
                    u = counter_uniform_one(seed[slot], pos[r])
                    peak = lg[r, 0] / t
                    for o in range(1, classes):
                        peak = max(peak, lg[r, o] / t)
                    total = _ZERO
                    for o in range(classes):
                        total = total + np.exp(lg[r, o] / t - peak)
                        probs[o] = total
                    target = u * total
                    drawn = 0
                    for o in range(classes):
                        if probs[o] <= target:
                            drawn += 1
                    best = min(drawn, classes - 1)
                next_input[slot] = best
                codes_out[r, k] = best


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    """[0, n) cut into `parts` contiguous, nearly equal ranges."""
    bounds = [n * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


class CpuBackend:
    """Compiled (numba) CPU generation backend; see the module docstring."""

    name = "cpu"

    def __init__(self, model: WaveNet, threads: int | None = None):
        self.device = torch.device("cpu")
        self.model = model.to(self.device).eval()
        self.config = model.config
        self.threads = max(1, int(threads or numba.config.NUMBA_NUM_THREADS))
        w = pack_weights(self.model)

        def np32(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)

        self.embedding = np32(w.embedding)                               # [classes, C]
        self.gate_w = np32(w.gate_weight.transpose(1, 2))                # [L, 2C in, 2C out]
        self.gate_b = np32(w.gate_bias)                                  # [L, 2C]
        self.out_w = np32(w.out_weight.transpose(1, 2))                  # [L, C, C+S]
        self.head_w = np32(w.head_weight.T)                              # [S, S]
        self.head_b = np32(w.head_bias)
        self.logit_w = np32(w.logits_weight.T)                           # [S, classes]
        self.logit_b = np32(w.logits_bias)
        layers, c2 = self.gate_b.shape
        self.mel_channels = 0 if w.local_weight is None else w.local_weight.shape[2]
        self.local_w = (np.zeros((layers, 0, c2), np.float32) if w.local_weight is None
                        else np32(w.local_weight.transpose(1, 2)))       # [L, M, 2C]
        self.speaker_bias = None if w.speaker_bias is None else np32(w.speaker_bias)
        self.offsets = np.asarray(np.cumsum((0,) + self.config.dilations[:-1]), np.int64)
        self.dilations = np.asarray(self.config.dilations, np.int64)
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
        inputs = np.asarray(torch.as_tensor(inputs).cpu(), dtype=np.int64).reshape(len(slots), 1)
        if local is not None:
            local = np.asarray(torch.as_tensor(local, dtype=torch.float32).cpu())
            local = local.reshape(len(slots), 1, -1)
        logits = np.empty((len(slots), 1, self.config.classes), np.float32)
        self._run(state, slots, 1, local, inputs, logits)
        return torch.from_numpy(logits[:, 0])

    @torch.no_grad()
    def teacher_force(self, state: GenerationState, slots, inputs, local=None) -> np.ndarray:
        """Consume given codes [n, K] (local [n, K, M]) -> logits [n, K, classes]."""
        slots = self._slots(slots)
        inputs = np.ascontiguousarray(np.asarray(inputs, dtype=np.int64))
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
        """Compile (or load from numba's cache) and run a tiny generate and teacher pass."""
        state = self.new_state(2)
        for slot in range(2):
            self.open_slot(state, slot, seed=slot, temperature=float(slot))
        local = None
        if self.mel_channels:
            local = np.zeros((2, 3, self.mel_channels), np.float32)
        self.generate(state, [0, 1], 3, local)
        self.step_logits(state, [0], [0], None if local is None else local[:1, 0])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    # -- internals ------------------------------------------------------------------

    @staticmethod
    def _slots(slots) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(slots, dtype=np.int64).reshape(-1))

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="wavenet-cpu")
            return self._pool

    def _bias(self, state: GenerationState, slots: np.ndarray) -> np.ndarray:
        """Gate bias per slot and layer [n, L, 2C], the speaker folded in (elementwise)."""
        bias = np.broadcast_to(self.gate_b, (len(slots),) + self.gate_b.shape)
        if self.speaker_bias is not None:
            speakers = state.speaker.numpy()[slots]
            bias = bias + self.speaker_bias[speakers]
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
            local = np.ascontiguousarray(
                np.asarray(torch.as_tensor(local, dtype=torch.float32).cpu()), np.float32)
            if local.shape != (n, num_steps, m):
                raise ValueError(f"local must be [{n}, {num_steps}, {m}], got {local.shape}")
        elif local is not None:
            raise ValueError("this model takes no local conditioning")
        else:
            local = np.zeros((n, 0, 0), np.float32)
        codes = np.zeros((n, num_steps), np.int64)
        if n == 0 or num_steps == 0:
            return codes
        views = (state.ring.numpy(), state.positions.numpy(), state.next_input.numpy(),
                 state.seed.numpy(), state.temperature.numpy())
        bias = self._bias(state, slots)
        weights = (self.offsets, self.dilations, self.embedding, self.gate_w, self.out_w,
                   self.head_w, self.head_b, self.logit_w, self.logit_b)

        def run(lo: int, hi: int) -> None:
            _run_rows(slots[lo:hi], num_steps, *views, *weights, bias[lo:hi], self.local_w,
                      local[lo:hi], forced[lo:hi], codes[lo:hi], logits[lo:hi])

        parts = min(self.threads, n)
        if parts == 1:
            run(0, n)
        else:
            for future in [self._executor().submit(run, lo, hi) for lo, hi in _split(n, parts)]:
                future.result()
        return codes
