"""The `triton` backend: a persistent Triton kernel makes a whole chunk per launch.

The CUDA-graph backend replays ~200 small kernels per sample; here one launch makes K
samples for every slot of the call (see triton/kernel.py for the kernel). Programs own
groups of `block` slots and never talk to each other, so a slot's codes do not depend on
its neighbours, its row or the chunk sizes (the dots have the same shape for every row).

Precision: "fp32" (IEEE dots, the torch backend's logits within 1e-4) or "fp16" (float16
weights and dot inputs, float32 accumulation and state). "auto" is fp16 on CUDA, fp32
elsewhere; docs/triton-kernel.md gives fp16's measured held-out NLL cost.

Mel conditioning: the kernel adds, per layer, the projection of the mel interpolated
between two frames; it projects frames (`MelFrames`, 1/hop of the work) or, when given
per-sample rows [n, K, M] like every backend, treats each row as a frame of hop 1.

Options (docs/architecture.md section 7): every version-2 option runs here
(`capabilities.BACKEND_OPTIONS`), and the excitation output (docs/excitation.md: `lpc`
coefficient rows per sample, the LPC history in the state). Scalar-output and excitation
models return 16-bit codes and feed back the unrounded sample, as the torch backend does;
a model with a learned upsampler takes per-sample rows (its upsampler runs outside the
kernel), so it does not accept `MelFrames`.

On a CUDA device the kernel is compiled by `triton.jit`; on the CPU it runs in the
Triton interpreter (slow: for tests of the kernel's logic, not for serving).
"""

from __future__ import annotations

import numpy as np
import torch

from wavenet_core.audio.mulaw import mulaw_table, mulaw_thresholds
from wavenet_core.generation.capabilities import require
from wavenet_core.generation.mel_frames import MelFrames
from wavenet_core.generation.packing import pack_weights
from wavenet_core.generation.sampling import scalar_codes
from wavenet_core.generation.shaping import check_shaping
from wavenet_core.generation.state import GenerationState, StateSlots
from wavenet_core.generation.triton.jit import jitted_kernel
from wavenet_core.generation.triton.shape import (
    NUM_WARPS,
    model_constexprs,
    require_fit,
)
from wavenet_core.model.wavenet import WaveNet

PRECISIONS = ("auto", "fp32", "fp16")
PROJECTION_BYTES = 64 << 20        # most memory the per-sample mel projection may take
# tl.dot's input_precision, every dot of the kernel (it does not apply to fp16's float16
# operands): "ieee", float32 FMA dots. "tf32x3" (3xTF32 on the tensor cores) compiles for
# sm_90 (Triton 3.6, 3.7) but its build is estimated slower with fp32's blocks and spills
# with whole tiles (docs/triton-kernel.md, "fp32 on the tensor cores (tf32x3)").
DOT_PRECISION = "ieee"


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} for the triton backend; "
                         f"choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    return precision


class TritonBackend(StateSlots):
    name = "triton"

    def __init__(self, model: WaveNet, device: str | torch.device | None = None,
                 precision: str = "auto", block: int = 16, num_warps: int | None = None):
        require(model.config, "triton")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        require_fit(model.config, self.precision)
        if block < 16 or block & (block - 1):
            raise ValueError("block must be a power of two >= 16 (tl.dot's minimum)")
        self.block = block
        self.num_warps = num_warps or NUM_WARPS
        self.model = model.to(self.device).eval()
        self.config = cfg = model.config
        # a learned upsampler runs outside the kernel: its rows come per sample
        self.accepts_mel_frames = not cfg.upsample_scales
        self.kernel = jitted_kernel(self.device)
        c, g, ks = cfg.residual_channels, cfg.gate_width, cfg.kernel_size
        self.constexprs = k = model_constexprs(cfg, self.precision, self.num_warps, block)
        self.cp, self.gp, self.sp, self.qp = k["CP"], k["GP"], k["SP"], k["QP"]
        self.tn, self.cb, self.gb, self.hb = k["TN"], k["CB"], k["GB"], k["HB"]
        self.wide = k["WIDE"]
        self.order, self.tp = k["ORDER"], k["TP"]
        w = pack_weights(self.model)
        wdt = torch.float16 if self.precision == "fp16" else torch.float32

        def mat(t: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
            """[..., out, in] -> transposed, zero-padded [..., rows, cols] in `wdt`."""
            t = t.transpose(-1, -2)
            out = t.new_zeros(t.shape[:-2] + (rows, cols))
            out[..., :t.shape[-2], :t.shape[-1]] = t
            return out.to(wdt).contiguous()

        cp, gp, sp = self.cp, self.gp, self.sp
        taps = w.gate_weight.unflatten(2, (ks, c)).transpose(1, 2)      # [L, k, 2G, C]
        self.wf, self.wg = mat(taps[:, :, :g], cp, gp), mat(taps[:, :, g:], cp, gp)
        self.wres = mat(w.out_weight[:, :c], gp, cp)
        self.wskip = mat(w.out_weight[:, c:], gp, sp)
        self.wh, self.wl = mat(w.head_weight, sp, sp), mat(w.logits_weight, sp, self.qp)
        self.bh = self._pad(w.head_bias, sp)
        self.bl = self._pad(w.logits_bias, self.qp, float("-inf"))
        self.bres = self.bskip = self._dummy = torch.zeros(1, device=self.device)
        if k["FUSED"]:     # [L, k, CP, 2 GP], f and g interleaved
            self.wf, self.wg = torch.stack([self.wf, self.wg], -1).flatten(-2), self._dummy
        if w.out_bias is not None:
            self.bres = self._pad(w.out_bias[:, :c], cp)
            self.bskip = self._pad(w.out_bias[:, c:], sp)
        if cfg.scalar_io:       # rows: input weight, input bias
            self.embedding = self._pad(torch.stack([w.input_weight, w.input_bias]), cp)
        else:
            self.embedding = self._pad(w.embedding, cp)
        self.gate_bias = self._split_pad(w.gate_bias)                    # [L, 2, GP]
        self.speaker_bias = (None if w.speaker_bias is None else
                             self._split_pad(w.speaker_bias))            # [spk, L, 2, GP]
        self.local_weight = w.local_weight                               # [L, 2G, M]
        spans = [(ks - 1) * d for d in cfg.dilations]
        self.dilations = torch.tensor(cfg.dilations, dtype=torch.int32, device=self.device)
        self.offsets = torch.tensor(np.cumsum([0] + spans[:-1]), dtype=torch.int32,
                                    device=self.device)
        self._dummy_long = torch.zeros(1, dtype=torch.int64, device=self.device)
        self._excitation_tensors(w)

    def _excitation_tensors(self, w) -> None:
        """An excitation model's prediction input [CP], mu-law thresholds [TP] (padded
        with +inf) and decode table [classes]; dummies for other models."""
        cfg = self.config
        self.pred_w = self.thresholds = self.table = self._dummy
        if cfg.lpc_excitation:
            self.pred_w = self._pad(w.prediction_input, self.cp)
            self.thresholds = self._pad(torch.from_numpy(mulaw_thresholds(cfg.classes)),
                                        self.tp, float("inf"))
            self.table = torch.from_numpy(mulaw_table(cfg.classes)).to(self.device)

    def _pad(self, t: torch.Tensor, width: int, fill: float = 0.0) -> torch.Tensor:
        """[..., n] -> [..., width] float32, padded with `fill`."""
        out = torch.full(t.shape[:-1] + (width,), fill, device=self.device)
        out[..., :t.shape[-1]] = t
        return out.contiguous()

    def _split_pad(self, t: torch.Tensor) -> torch.Tensor:
        """[..., 2G] (filter then gate) -> [..., 2, GP] float32, zero-padded."""
        return self._pad(t.unflatten(-1, (2, -1)), self.gp)

    # -- interface ------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, state: GenerationState, slots, num_steps: int, local=None,
                 lpc=None, shaping=None) -> np.ndarray:
        """Sample `num_steps` codes for every slot in `slots` -> int64 array [n, num_steps]
        (16-bit codes of the samples for scalar-output and excitation models, which feed
        back unrounded).

        `local`: per-sample rows [n, num_steps, M] (as every backend takes) or `MelFrames`;
        an excitation model's `lpc` [n, num_steps, order] coefficient rows; `shaping`
        [n, num_steps, 2] each sample's (temperature, floor) in place of the slots'
        temperatures (generation/shaping.py).
        """
        slots_t = self._slots(state, slots)
        scalar = self._values
        codes = torch.zeros(len(slots_t), int(num_steps), device=self.device,
                            dtype=torch.float32 if scalar else torch.int64)
        lpc = self._lpc_rows(lpc, len(slots_t), int(num_steps))
        if shaping is not None:
            shaping = torch.from_numpy(check_shaping(shaping, self.config, len(slots_t),
                                                     int(num_steps))).to(self.device)
        if len(slots_t) and num_steps > 0:
            if not scalar:
                self._check_codes(state.next_input[slots_t])
            self._launch(state, slots_t, int(num_steps), local, None, codes, self._dummy, lpc,
                         shaping)
        elif self.config.local_conditioning:
            MelFrames.coerce(local, len(slots_t), int(num_steps), self.config.mel_channels,
                             self.accepts_mel_frames)
        return (scalar_codes(codes) if scalar else codes).cpu().numpy()

    @torch.no_grad()
    def teacher_force(self, state: GenerationState, slots, inputs, local=None,
                      lpc=None) -> torch.Tensor:
        """Consume given inputs [n, K] (codes, or samples for scalar input and excitation
        models; local [n, K, M], lpc [n, K, order]) -> outputs [n, K, output_channels]
        (logits or distribution parameters)."""
        slots_t = self._slots(state, slots)
        scalar = self._values
        forced = torch.as_tensor(np.asarray(inputs), device=self.device,
                                 dtype=torch.float32 if scalar else torch.int64)
        if forced.ndim != 2 or forced.shape[0] != len(slots_t):
            raise ValueError(f"inputs must be [{len(slots_t)}, K], got {tuple(forced.shape)}")
        if forced.numel() and not scalar:
            self._check_codes(forced)
        k = forced.shape[1]
        logits = torch.empty(len(slots_t), k, self.config.output_channels, device=self.device)
        lpc = self._lpc_rows(lpc, len(slots_t), k)
        if len(slots_t) and k:
            self._launch(state, slots_t, k, local, forced.contiguous(), self._dummy_long, logits,
                         lpc)
        return logits

    @torch.no_grad()
    def step_logits(self, state: GenerationState, slots, inputs, local=None,
                    lpc=None) -> torch.Tensor:
        """Consume one given input per slot (an excitation model's with its coefficient
        rows `lpc` [n, order]) -> outputs [n, output_channels]; advances them."""
        inputs = torch.as_tensor(np.asarray(torch.as_tensor(inputs).cpu())).reshape(-1, 1)
        if local is not None:
            local = torch.as_tensor(local, dtype=torch.float32).reshape(len(inputs), 1, -1)
        if lpc is not None:
            lpc = torch.as_tensor(lpc, dtype=torch.float32).reshape(len(inputs), 1, -1)
        return self.teacher_force(state, slots, inputs, local, lpc)[:, 0]

    def warmup(self) -> None:
        """Compile the kernel (both modes) so that the first request pays nothing."""
        state = self.new_state(1)
        self.open_slot(state, 0)
        m = self.config.mel_channels
        local = np.zeros((1, 2, m), np.float32) if m else None
        lpc = (np.zeros((1, 2, self.order), np.float32) if self.config.lpc_excitation
               else None)
        self.generate(state, [0], 2, local, lpc)
        if self.config.voicing_shaping:       # its own compiled variant (SHAPED)
            self.generate(state, [0], 2, local, lpc, np.ones((1, 2, 2), np.float32) / 2)
        self.teacher_force(state, [0], [[0, 0]], local, lpc)

    # -- internals ------------------------------------------------------------------

    @property
    def _values(self) -> bool:
        """The model feeds back samples, not codes (scalar input, excitation models)."""
        return self.config.scalar_io or self.config.lpc_excitation

    def _lpc_rows(self, lpc, n: int, num_steps: int) -> torch.Tensor:
        """The call's coefficient rows [n, K, order] on the device (a dummy for a model
        without an excitation output)."""
        if not self.config.lpc_excitation:
            return self._dummy
        if lpc is None:
            raise ValueError("an excitation model (excitation 'lpc') needs `lpc` rows")
        rows = torch.as_tensor(np.asarray(torch.as_tensor(lpc).cpu(), np.float32))
        if tuple(rows.shape) != (n, num_steps, self.order):
            raise ValueError(f"lpc must be [{n}, {num_steps}, {self.order}], got "
                             f"{tuple(rows.shape)}")
        return rows.to(self.device).contiguous()

    def _check_codes(self, codes: torch.Tensor) -> None:
        if bool(((codes < 0) | (codes >= self.config.classes)).any()):
            raise ValueError(f"input codes must be in [0, {self.config.classes})")

    def _slots(self, state: GenerationState, slots) -> torch.Tensor:
        if state.ring.device != self.device:
            raise ValueError(f"the state lives on {state.ring.device}, the backend on "
                             f"{self.device}")
        s = np.asarray(torch.as_tensor(slots).cpu(), dtype=np.int64).reshape(-1)
        if len(s) and (s.min() < 0 or s.max() >= state.num_slots):
            raise IndexError(f"slot out of range for a state of {state.num_slots} slots")
        if len(np.unique(s)) != len(s):
            raise ValueError("each slot may appear only once per call")
        return torch.from_numpy(s).to(self.device)

    def _projection(self, frames: MelFrames) -> torch.Tensor:
        """Frames [n, F, M] -> their projections [n, F, L, 2, CP] (mel std folded in)."""
        f = torch.from_numpy(np.ascontiguousarray(frames.frames)).to(self.device)
        proj = torch.einsum("nfm,lom->nflo", f, self.local_weight)
        return self._split_pad(proj)

    def _bias(self, state: GenerationState, slots: torch.Tensor) -> torch.Tensor:
        bias = self.gate_bias.unsqueeze(0).expand(len(slots), -1, -1, -1)
        if self.speaker_bias is not None:
            bias = bias + self.speaker_bias[state.speaker[slots]]
        return bias.contiguous()

    def _launch(self, state, slots, num_steps, local, forced, codes, logits, lpc,
                shaping=None) -> None:
        """Run the kernel over the chunk; per-sample mel rows go in spans whose projection
        fits in PROJECTION_BYTES (each span one launch, outputs copied into place)."""
        n = len(slots)
        frames = MelFrames.coerce(local, n, num_steps, self.config.mel_channels,
                                  self.accepts_mel_frames)
        span = num_steps
        if frames is not None and frames.hop == 1:
            per_step = n * self.config.num_layers * 2 * self.gp * 4
            span = max(1, PROJECTION_BYTES // per_step - 1)
        if span >= num_steps:
            self._run(state, slots, num_steps, frames, forced, codes, logits, lpc, shaping)
            return
        for start in range(0, num_steps, span):
            k = min(span, num_steps - start)
            part = MelFrames.from_rows(frames.frames[:, start:start + k])
            rows = lpc if lpc.ndim != 3 else lpc[:, start:start + k].contiguous()
            if forced is None:
                out = torch.empty(n, k, dtype=codes.dtype, device=self.device)
                self._run(state, slots, k, part, None, out, logits, rows,
                          None if shaping is None else shaping[:, start:start + k].contiguous())
                codes[:, start:start + k] = out
            else:
                out = torch.empty(n, k, logits.shape[2], device=self.device)
                self._run(state, slots, k, part, forced[:, start:start + k].contiguous(),
                          codes, out, rows)
                logits[:, start:start + k] = out

    def _run(self, state, slots, num_steps, frames, forced, codes, logits, lpc,
             shaping=None) -> None:
        proj, phase, hop, num_frames = self._dummy, self._dummy_long, 1, 1
        if frames is not None:
            proj = self._projection(frames)
            phase = torch.from_numpy(frames.phase.astype(np.int64)).to(self.device)
            hop, num_frames = int(frames.hop), int(frames.frames.shape[1])
        bias = self._bias(state, slots)
        cfg = self.config
        grid = (-(-len(slots) // self.block),)
        padded = grid[0] * self.block          # blocked dots: x and z of each row, in memory
        staged = self.constexprs["LAYER_STAGES"]
        xs = (self._dummy if self.cb == self.cp and staged == 1 else      # stage: a row a layer
              torch.empty(padded, cfg.num_layers if staged > 1 else 1, self.cp,
                          device=self.device))
        zs = (self._dummy if self.gb == self.gp else
              torch.empty(padded, self.gp, device=self.device))
        ss = (self._dummy if self.hb == self.sp and not self.wide else
              torch.empty(padded, self.sp, device=self.device))
        self.kernel[grid](
            state.ring, state.positions, state.next_value if self._values else state.next_input,
            state.seed, state.temperature, slots, len(slots), num_steps, bias,
            self._dummy_long if forced is None else forced, codes, logits,
            proj, phase, hop, num_frames,
            self.dilations, self.offsets, self.embedding, self.wf, self.wg, self.wres,
            self.wskip, self.bres, self.bskip, self.wh, self.bh, self.wl, self.bl,
            state.ring.size(1), cfg.num_layers, cfg.residual_scale, cfg.log_scale_min,
            lpc, state.lpc_history if cfg.lpc_excitation else self._dummy, self.pred_w,
            self.thresholds, self.table, self._dummy if shaping is None else shaping, xs, zs,
            ss,
            TEACHER=forced is not None, LOCAL=frames is not None, SHAPED=shaping is not None,
            PRECISION=DOT_PRECISION, ASM=self.device.type == "cuda", **self.constexprs,
            num_warps=self.num_warps, num_stages=1)

