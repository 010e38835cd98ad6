"""Compiled CPU generation backend: the whole chunk loop in one numba kernel.

One call of `cpu.loop.run_rows` produces K samples for a group of slots: input vector, every
layer (ring read/write, fused filter+gate matrix on the k taps [x(t-(k-1)d), ..., x(t)],
tanh * sigmoid, fused residual+skip matrix), the head and the sampling (codes, or mixture /
Gaussian samples, or an excitation model's samples, docs/excitation.md; per-sample
temperatures and floors for voicing-shaped sampling, docs/voicing.md), with no Python in
between. It runs every config option but the learned upsampler, which runs outside (the
backend then takes per-sample rows, not frames). The kernel
releases the GIL. Two ways to use the threads (docs/cpu-kernel.md):
- group mode (at least as many slots as threads): the slots are split into contiguous
  groups, one per thread, each thread with the whole model;
- split mode (fewer slots than threads, e.g. one stream on two cores, or any number of
  slots on a model whose weights overflow a core's L2): every thread runs all the slots
  but owns a column slice of every matrix, packed into its own buffer so it stays in its
  own core's L2 (or, for a large model, so each core streams only its share from memory);
  the threads meet at a spin barrier per layer (cpu/sync.py).

Weights come in three formats (cpu/weights.py): fp32, bf16 (half the bytes) and int8 with
per-column scales (a quarter), all accumulated in float32; `precision.py` picks one.

Matrix code. Every matrix is stored transposed ([inputs, outputs]), its outputs padded to
a multiple of 16 and cut into contiguous panels 64 outputs wide. The micro-kernels
(cpu/kernels.py) keep a block of 4 rows x 64 outputs in registers for the whole input loop;
at batch 1 the weights stream sequentially from the cache. They are written with explicit
16-lane vector intrinsics, so LLVM neither needs nor gets a say in the vectorization.

Batch invariance, bitwise. Each output element is one chain of fused multiply-adds over
the inputs in their natural order, started from the bias (`llvm.fma`, no reassociation),
whatever the row block, the number of slots in the call, the thread, the team size or the
chunk size. tanh and sigmoid use a rational approximation (Eigen's float tanh), ~3e-7.
Sampling reproduces `sampling.counter_uniform` and `sample_codes` bit for bit.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

from wavenet_core.generation.capabilities import require
from wavenet_core.generation.cpu.dot import GROUP
from wavenet_core.generation.cpu.excitation import excitation_dims
from wavenet_core.generation.cpu.kernels import Call, Dims, Shard, Team
from wavenet_core.generation.cpu.loop import run_rows
from wavenet_core.generation.cpu.packing import PaddedMatrices, aligned, split_range
from wavenet_core.generation.cpu.scalar import OUT_KINDS
from wavenet_core.generation.cpu.simd import PANEL
from wavenet_core.generation.cpu.split import SplitChoices, cache_sizes
from wavenet_core.generation.cpu.sync import SPLIT_SUPPORTED, new_flags
from wavenet_core.generation.cpu.weights import PRECISIONS
from wavenet_core.generation.mel_frames import MelFrames
from wavenet_core.generation.shaping import check_shaping
from wavenet_core.generation.state import GenerationState, StateSlots
from wavenet_core.model.wavenet import WaveNet

SPLIT_POLICIES = ("auto", "always", "never")


class CpuBackend(StateSlots):
    """Compiled (numba) CPU generation backend; see the module docstring.

    `threads` worker threads share each call (default: numba's thread count, the number
    of cores); `precision` is the weight format: fp32, bf16 or int8 (`make_backend`
    resolves "auto"); `split` says when calls with fewer slots than threads split every
    matrix across the threads: "always", "never", or "auto" (when measured faster); with
    weights larger than a core's L2 (`core_cache`, bytes; default: this CPU's), calls on
    any number of slots may split.
    """

    name = "cpu"

    def __init__(self, model: WaveNet, threads: int | None = None, precision: str = "fp32",
                 split: str = "auto", core_cache: int | None = None):
        if split not in SPLIT_POLICIES:
            raise ValueError(f"split must be one of {', '.join(SPLIT_POLICIES)}")
        if precision not in PRECISIONS:
            raise ValueError(f"unknown cpu precision {precision!r}; choose one of "
                             f"{', '.join(PRECISIONS)}")
        require(model.config, "cpu")
        self.device = torch.device("cpu")
        self.model = model.to(self.device).eval()
        self.config = cfg = model.config
        self.threads = max(1, int(threads or numba.config.NUMBA_NUM_THREADS))
        self.precision = precision
        self.matrices = mats = PaddedMatrices(self.model)
        self.mel_channels = mats.mel_channels
        # mel as frames (projected per frame, not per sample), unless a learned upsampler
        # must make the rows first (the runner then sends rows)
        self.accepts_mel_frames = self.model.upsampler is None
        spans = [(cfg.kernel_size - 1) * d for d in cfg.dilations]
        self.dims = Dims(offsets=np.asarray(np.cumsum([0] + spans[:-1]), np.int64),
                         dilations=np.asarray(cfg.dilations, np.int64),
                         spans=np.asarray(spans, np.int64), taps=cfg.kernel_size,
                         emb=mats.embedding, in_w=mats.input_w, c=cfg.residual_channels,
                         cp=mats.cp, zp=mats.zp, sp=mats.sp, qp=mats.qp, m=mats.mel_channels,
                         nout=cfg.output_channels, scale=np.float32(cfg.residual_scale),
                         out_kind=OUT_KINDS[cfg.output], mixtures=cfg.mixtures,
                         lsm=np.float32(cfg.log_scale_min), **excitation_dims(self.model))
        self._shards: dict[int, list[Shard]] = {1: [mats.shard(0, 1, precision)]}
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.split = split
        self._split_choices = SplitChoices()
        # CPU seconds spent inside the kernel's calls, every thread's (thread CPU clocks):
        # what a server's own CPU is compared against (docs/performance.md)
        self.kernel_cpu_s = 0.0
        solo = self._shards[1][0]
        # the whole model overflows one core's L2: in group mode every thread would stream
        # all of it from L3 or memory for each step; split, each core reads its share once
        self.streams_weights = solo.w.nbytes + solo.s.nbytes > (
            cache_sizes()["L2"] if core_cache is None else core_cache)

    # -- interface ------------------------------------------------------------------

    @torch.no_grad()
    def step_logits(self, state: GenerationState, slots, inputs, local=None,
                    lpc=None) -> torch.Tensor:
        """Consume one given input per slot (a code, or a sample for scalar input and
        excitation models, these with the predicted sample's coefficient rows `lpc`
        [n, order]) -> outputs [n, output_channels]; advances the slots."""
        slots = self._slots(slots)
        inputs = np.asarray(torch.as_tensor(inputs).cpu(), dtype=self._input_dtype)
        if local is not None:
            local = torch.as_tensor(local, dtype=torch.float32).cpu().reshape(len(slots), 1, -1)
        if lpc is not None:
            lpc = np.asarray(torch.as_tensor(lpc).cpu(), np.float32).reshape(len(slots), 1, -1)
        return torch.from_numpy(self.teacher_force(state, slots, inputs.reshape(-1, 1),
                                                   local, lpc)[:, 0])

    @torch.no_grad()
    def teacher_force(self, state: GenerationState, slots, inputs, local=None,
                      lpc=None) -> np.ndarray:
        """Consume given inputs [n, K] (codes, or samples for scalar input and excitation
        models; local [n, K, M], lpc [n, K, order]) -> outputs [n, K, output_channels]."""
        slots = self._slots(slots)
        inputs = np.ascontiguousarray(np.asarray(inputs, dtype=self._input_dtype))
        if inputs.ndim != 2 or inputs.shape[0] != len(slots):
            raise ValueError(f"inputs must be [{len(slots)}, K], got {inputs.shape}")
        logits = np.empty(inputs.shape + (self.config.output_channels,), np.float32)
        self._run(state, slots, inputs.shape[1], local, inputs, logits, lpc)
        return logits

    @torch.no_grad()
    def generate(self, state: GenerationState, slots, num_steps: int,
                 local=None, lpc=None, shaping=None) -> np.ndarray:
        """Sample `num_steps` codes for every slot in `slots` -> int64 array [n, num_steps].

        `local` conditions each produced sample (None without mel): per-sample rows
        [n, num_steps, M] or `MelFrames` (what the server sends: 1/hop of the projections;
        rows only with a learned upsampler); an excitation model's `lpc` [n, num_steps,
        order] predicts it; `shaping` [n, num_steps, 2] gives each sample's (temperature,
        floor) in place of the slots' temperatures (generation/shaping.py). Scalar-output
        and excitation models give 16-bit PCM codes (sampling.scalar_codes) and feed the
        unrounded sample back.
        """
        slots = self._slots(slots)
        forced = np.zeros((len(slots), 0), self._input_dtype)
        logits = np.zeros((len(slots), 0, 0), np.float32)
        if shaping is None:
            shaping = np.zeros((len(slots), 0, 2), np.float32)
        else:
            shaping = check_shaping(shaping, self.config, len(slots), int(num_steps))
        return self._run(state, slots, int(num_steps), local, forced, logits, lpc, shaping)

    def warmup(self) -> None:
        """Compile (or load from numba's cache) and run a tiny generate and teacher pass,
        on one slot, on a block of four and in split mode, so the first request pays
        nothing."""
        state = self.new_state(5)
        for slot in range(5):
            self.open_slot(state, slot, seed=slot, temperature=float(slot % 2))
        m, order = self.mel_channels, self.dims.order
        rows = (lambda n, k: np.zeros((n, k, order), np.float32)) if order else (
            lambda n, k: None)
        self.generate(state, [0], 3, np.zeros((1, 3, m), np.float32) if m else None,
                      rows(1, 3))
        self.generate(state, list(range(5)), 3, np.zeros((5, 3, m), np.float32) if m else None,
                      rows(5, 3))
        self.step_logits(state, [0], [0], np.zeros((1, m), np.float32) if m else None,
                         None if not order else rows(1, 1)[:, 0])

    def close(self) -> None:
        """Stop the worker threads (a later call starts them again)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None

    def split_threads(self, num_slots: int) -> int:
        """Threads that may split every matrix for a call of `num_slots` slots (1: group
        mode): all of them when there are fewer slots than threads, or for any number of
        slots when the model's weights overflow a core's L2 (`streams_weights`)."""
        if (SPLIT_SUPPORTED and self.split != "never" and self.threads > 1 and num_slots > 0
                and (num_slots < self.threads or self.streams_weights)):
            return self.threads
        return 1

    def weight_bytes(self, num_slots: int = 1) -> int:
        """Weight bytes one thread reads per step of a call on `num_slots` slots (its
        shard in split mode, less the residual panels other threads compute; the whole
        model in group mode)."""
        parts = self.split_threads(num_slots)
        shard = self._team_shards(parts)[0]
        lo, hi, shared = self._residual_panels(0, parts, num_slots)
        words = self.dims.zp // GROUP[self.precision]          # weight words per column
        per_column = words * shard.w.itemsize + (4 if shard.s.size else 0)
        skipped = (shared - (hi - lo)) * self.config.num_layers * per_column
        return shard.w.nbytes + shard.s.nbytes - skipped

    # -- internals ------------------------------------------------------------------

    @property
    def _input_dtype(self):
        return np.float32 if self._values else np.int64

    @property
    def _values(self) -> bool:
        """The model feeds back samples, not codes (scalar input, excitation models)."""
        return self.config.scalar_io or self.config.lpc_excitation

    def _lpc_rows(self, lpc, n: int, num_steps: int) -> np.ndarray:
        """The call's coefficient rows [n, K, order], contiguous float32 (empty for a model
        without an excitation output)."""
        order = self.dims.order
        if not order:
            return np.zeros((n, 0, 0), np.float32)
        if lpc is None:
            raise ValueError("an excitation model (excitation 'lpc') needs `lpc` rows")
        rows = _kernel_array(lpc, np.float32)
        if rows.shape != (n, num_steps, order):
            raise ValueError(f"lpc must be [{n}, {num_steps}, {order}], got {rows.shape}")
        return rows

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

    def _team_shards(self, parts: int) -> list[Shard]:
        with self._pool_lock:
            if parts not in self._shards:
                self._shards[parts] = [self.matrices.shard(p, parts, self.precision)
                                       for p in range(parts)]
            return self._shards[parts]

    def _bias(self, state: GenerationState, slots: np.ndarray) -> np.ndarray:
        """Padded gate bias per slot and layer [n, L, 2cp], the speaker folded in: always a
        fresh writable array. For one slot the broadcast view already counts as contiguous,
        so `ascontiguousarray` kept it read-only, numba typed the call's bias `readonly
        array` and compiled run_rows anew in the middle of serving (issue 32: a one-slot
        call on one thread, which warm-up never makes; ~12 s on two busy cores, all
        streams behind; tests/generation/cpu/test_cpu_call_types.py)."""
        gate_b = self.matrices.gate_b
        bias = np.broadcast_to(gate_b, (len(slots),) + gate_b.shape)
        if self.matrices.speaker_bias is not None:
            bias = bias + self.matrices.speaker_bias[state.speaker.numpy()[slots]]
        return _kernel_array(bias, np.float32)

    def _frames(self, local, n: int, num_steps: int) -> MelFrames:
        """The call's mel as frames (empty ones without mel), contiguous float32."""
        frames = MelFrames.coerce(local, n, num_steps, self.mel_channels,
                                  self.accepts_mel_frames)
        if frames is None:
            return MelFrames(np.zeros((n, 0, 0), np.float32), np.zeros(n, np.int64), 1,
                             num_steps)
        return MelFrames(_kernel_array(frames.frames, np.float32),
                         _kernel_array(frames.phase, np.int64), frames.hop,
                         num_steps)

    def _residual_panels(self, part: int, parts: int, n: int) -> tuple[int, int, int]:
        """(lo, hi, shared): thread `part`'s residual columns [lo, hi) of the shared
        [0, shared), in whole panels, when a team of `parts` splits the residual too (an
        extra barrier per layer): for calls on at least as many slots as threads, or on a
        model that streams its weights, whose residual has a panel per thread. Else
        (0, 0, 0): every thread computes the whole residual, cheaper than a barrier for
        one stream on a small model (docs/cpu-kernel.md)."""
        panels = self.dims.cp // PANEL
        if parts < 2 or panels < parts or not (n >= parts or self.streams_weights):
            return 0, 0, 0
        lo, hi = split_range(panels, parts)[part]
        return lo * PANEL, hi * PANEL, panels * PANEL

    def _teams(self, threads: int, n: int) -> list[Team]:
        """The team of a call on n slots: one Team per thread, all sharing one set of
        buffers and barrier counters."""
        d = self.dims
        shared = dict(flags=new_flags(threads), z=aligned(np.zeros(2 * n * d.zp)),
                      act=aligned(np.zeros(n * d.sp)), hid=aligned(np.zeros(n * d.sp)),
                      lg=aligned(np.zeros(n * d.qp)), x=aligned(np.zeros(n * d.cp)))
        return [Team(thread=t, threads=threads, **shared,
                     **dict(zip(("res_lo", "res_hi", "res_all"),
                                self._residual_panels(t, threads, n))))
                for t in range(threads)]

    def _run(self, state: GenerationState, slots: np.ndarray, num_steps: int, local,
             forced: np.ndarray, logits: np.ndarray, lpc=None, shaping=None) -> np.ndarray:
        n = len(slots)
        if state.ring.device.type != "cpu":
            raise ValueError("the cpu backend needs a GenerationState on the CPU")
        if n and (slots.min() < 0 or slots.max() >= state.num_slots):
            raise IndexError(f"slot out of range for a state of {state.num_slots} slots")
        if len(np.unique(slots)) != n:
            raise ValueError("each slot may appear only once per call")
        mel = self._frames(local, n, num_steps)
        lpc = self._lpc_rows(lpc, n, num_steps)
        codes = np.zeros((n, num_steps), np.int64)
        if shaping is None:                # teacher forcing: no sampling
            shaping = np.zeros((n, 0, 2), np.float32)
        if n == 0 or num_steps == 0:
            return codes
        scalar = self._values              # samples (forced_v) in, not codes (forced)
        if not scalar:
            classes = self.config.classes
            first = forced if forced.shape[1] else state.next_input.numpy()[slots]
            if first.min() < 0 or first.max() >= classes:
                raise ValueError(f"input codes must be in [0, {classes})")
        none = np.zeros((n, 0), np.int64)
        ring = state.ring.numpy()
        views = dict(positions=state.positions.numpy(),
                     next_input=state.next_input.numpy(), next_value=state.next_value.numpy(),
                     seed=state.seed.numpy(), temperature=state.temperature.numpy(),
                     num_steps=num_steps)
        bias = self._bias(state, slots)
        history = state.lpc_history.numpy()

        def call(lo: int, hi: int, gate_cols=slice(None), private_ring=False) -> Call:
            rows = slots[lo:hi]
            # split mode, thread p > 0: its own copy of the call's rings (rows 0..n-1)
            own, own_rows = (ring[rows], np.arange(hi - lo)) if private_ring else (ring, rows)
            return Call(slots=rows, ring=own, ring_rows=own_rows, bias=np.ascontiguousarray(
                            bias[lo:hi][:, :, gate_cols]).reshape(-1),
                        frames=mel.frames[lo:hi].reshape(-1), phase=mel.phase[lo:hi],
                        hop=mel.hop, forced=none[lo:hi] if scalar else forced[lo:hi],
                        forced_v=forced[lo:hi] if scalar else none[lo:hi].astype(np.float32),
                        codes=codes[lo:hi], logits=logits[lo:hi], lpc=lpc[lo:hi],
                        lpc_history=history, shaping=shaping[lo:hi], **views)

        parts = self.split_threads(n)
        measured = parts > 1 and self.split == "auto"       # auto: pick and time a mode
        if measured:
            choice = self._split_choices.for_call(num_steps, n)
            parts = choice.pick(parts)
        if parts > 1:                     # split mode: every thread on all slots
            shards = self._team_shards(parts)
            teams = self._teams(parts, n)
            jobs = [(shards[p], call(0, n, self.matrices.gate_columns(p, parts), p > 0),
                     teams[p]) for p in range(parts)]
        else:                             # group mode: one group of slots per thread
            groups = split_range(n, min(self.threads, n))
            solo = self._shards[1][0]
            jobs = [(solo, call(lo, hi), self._teams(1, hi - lo)[0]) for lo, hi in groups]
        began = time.perf_counter()
        futures = [self._executor().submit(_timed_rows, self.dims, *job) for job in jobs[1:]]
        cpu = 0.0
        try:
            cpu = _timed_rows(self.dims, *jobs[0])   # the first job runs on the calling thread
        finally:
            for future in futures:
                cpu += future.result()
            self.kernel_cpu_s += cpu
        if measured:
            choice.observe(parts, n * num_steps / (time.perf_counter() - began))
        return codes


def _kernel_array(values, dtype) -> np.ndarray:
    """`values` as a C-contiguous, writable array of `dtype` (a copy only where needed): a
    read-only array (np.frombuffer of a client's bytes, a broadcast view) is another numba
    type, and a new type compiles run_rows again mid-call (issue 32, `_bias`)."""
    return np.require(np.asarray(values, dtype=dtype), dtype, ["C", "W"])


def _timed_rows(dims: Dims, shard: Shard, call: Call, team: Team) -> float:
    """`run_rows` on this thread -> the thread's CPU seconds inside it."""
    t0 = time.thread_time()
    run_rows(dims, shard, call, team)
    return time.thread_time() - t0
