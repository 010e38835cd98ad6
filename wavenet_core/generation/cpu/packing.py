"""Cutting the model's weights into the CPU kernel's shards (see cpu/backend.py).

`PaddedMatrices` holds the fused matrices of `packing.pack_weights`, transposed to
[inputs, outputs] and padded to vector widths; `shard(part, parts, precision)` cuts one
thread's column slice of every matrix and encodes it in one weight format.
"""

from __future__ import annotations

import numpy as np
import torch

from wavenet_core.generation.cpu.kernels import Shard
from wavenet_core.generation.cpu.simd import LANES
from wavenet_core.generation.cpu.weights import encode_panels
from wavenet_core.generation.packing import pack_weights
from wavenet_core.model.wavenet import WaveNet


def _pad(n: int) -> int:
    return -(-n // LANES) * LANES


def aligned(a: np.ndarray, dtype=np.float32) -> np.ndarray:
    """A 64-byte aligned, C-contiguous copy of `a` in `dtype`."""
    a = np.ascontiguousarray(a, dtype=dtype)
    buf = np.zeros(a.nbytes + 64, np.uint8)
    skip = -buf.ctypes.data % 64
    out = buf[skip:skip + a.nbytes].view(dtype).reshape(a.shape)
    out[...] = a
    return out


def split_range(n: int, parts: int) -> list[tuple[int, int]]:
    """[0, n) cut into `parts` contiguous, nearly equal ranges."""
    bounds = [n * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


def _slice16(width: int, part: int, parts: int) -> tuple[int, int]:
    """Part `part` of [0, width) in whole vectors of 16: (start, length)."""
    lo, hi = split_range(width // LANES, parts)[part]
    return lo * LANES, (hi - lo) * LANES


class PaddedMatrices:
    """The model's fused matrices, transposed to [inputs, outputs] and zero-padded to
    vector widths (cp residual, zp z, sp skip, qp outputs), float32: what shards are cut
    from. The gate takes k taps of cp inputs each (oldest first) and gives [filter zp |
    gate zp]; the out matrix takes zp and gives [residual cp | skip sp]."""

    def __init__(self, model: WaveNet):
        cfg = model.config
        w = pack_weights(model)

        def host(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float32)

        c, s, nout, layers = (cfg.residual_channels, cfg.skip_channels, cfg.output_channels,
                              cfg.num_layers)
        g, k = cfg.gate_width, cfg.kernel_size
        self.cp, self.zp, self.sp, self.qp = cp, zp, sp, qp = (_pad(c), _pad(g), _pad(s),
                                                               _pad(nout))
        both = np.r_[np.arange(g), zp + np.arange(g)]          # real rows of a [2zp] vector
        taps = (cp * np.arange(k)[:, None] + np.arange(c)).ravel()   # real rows of [k cp]
        res_skip = np.r_[np.arange(c), cp + np.arange(s)]      # real rows of a [cp+sp] vector
        self.gate = np.zeros((layers, k * cp, 2 * zp), np.float32)
        self.gate[:, taps[:, None], both[None, :]] = host(w.gate_weight).transpose(0, 2, 1)
        self.out = np.zeros((layers, zp, cp + sp), np.float32)
        self.out[:, :g, res_skip] = host(w.out_weight).transpose(0, 2, 1)
        self.out_b = np.zeros((layers if w.out_bias is not None else 0, cp + sp), np.float32)
        if w.out_bias is not None:
            self.out_b[:, res_skip] = host(w.out_bias)
        self.head = np.zeros((sp, sp), np.float32)
        self.head[:s, :s] = host(w.head_weight).T
        self.logit = np.zeros((sp, qp), np.float32)
        self.logit[:s, :nout] = host(w.logits_weight).T
        self.head_b = np.r_[host(w.head_bias), np.zeros(sp - s, np.float32)]
        self.logit_b = np.r_[host(w.logits_bias), np.zeros(qp - nout, np.float32)]
        self.embedding = (np.zeros((0, c), np.float32) if w.embedding is None else
                          np.ascontiguousarray(host(w.embedding)))             # [classes, C]
        self.input_w = (np.zeros((0, c), np.float32) if w.input_weight is None else
                        np.stack([host(w.input_weight), host(w.input_bias)]))  # [2, C]
        self.gate_b = np.zeros((layers, 2 * zp), np.float32)
        self.gate_b[:, both] = host(w.gate_bias)
        self.speaker_bias = None
        if w.speaker_bias is not None:
            self.speaker_bias = np.zeros((w.speaker_bias.shape[0], layers, 2 * zp), np.float32)
            self.speaker_bias[:, :, both] = host(w.speaker_bias)
        self.mel_channels = m = 0 if w.local_weight is None else int(w.local_weight.shape[2])
        self.local = np.zeros((layers, m, 2 * zp), np.float32)
        if m:
            self.local[:, :, both] = host(w.local_weight).transpose(0, 2, 1)

    def gate_columns(self, part: int, parts: int) -> np.ndarray:
        """A shard's gate columns: [filter J | gate J] for its z slice J."""
        lo, n = _slice16(self.zp, part, parts)
        return np.r_[lo:lo + n, self.zp + lo:self.zp + lo + n]

    def shard(self, part: int, parts: int, precision: str) -> Shard:
        """Thread `part` of `parts`: its column slice of every matrix in one buffer, in
        order of use (gate 0, out 0, gate 1, ..., head, logits)."""
        cp = self.cp
        j_lo, jt = _slice16(self.zp, part, parts)
        s_lo, st = _slice16(self.sp, part, parts)
        h_lo, ht = _slice16(self.sp, part, parts)
        q_lo, qt = _slice16(self.qp, part, parts)
        gate_cols = self.gate_columns(part, parts)
        out_cols = np.r_[0:cp, cp + s_lo:cp + s_lo + st]
        mats = []
        for g, o in zip(self.gate, self.out):
            mats += [g[:, gate_cols], o[:, out_cols]]
        mats += [self.head[:, h_lo:h_lo + ht], self.logit[:, q_lo:q_lo + qt]]
        encoded = [encode_panels(mat, precision) for mat in mats]
        w_starts = np.cumsum([0] + [e[0].size for e in encoded])
        s_starts = np.cumsum([0] + [e[1].size for e in encoded])
        dtype = encoded[0][0].dtype
        local = self.local[:, :, gate_cols]
        m = self.mel_channels
        local_p = (np.concatenate([encode_panels(lw, "fp32")[0] for lw in local]) if m
                   else np.zeros(0, np.float32))
        def ints(a):
            return (np.ascontiguousarray(a, np.int64))
        return Shard(
            w=aligned(np.concatenate([e[0] for e in encoded]), dtype),
            s=aligned(np.concatenate([e[1] for e in encoded] + [np.zeros(0, np.float32)])),
            gate_off=ints(w_starts[0:-3:2]), gate_soff=ints(s_starts[0:-3:2]),
            out_off=ints(w_starts[1:-3:2]), out_soff=ints(s_starts[1:-3:2]),
            head_off=int(w_starts[-3]), head_soff=int(s_starts[-3]),
            logit_off=int(w_starts[-2]), logit_soff=int(s_starts[-2]),
            head_b=aligned(self.head_b[h_lo:h_lo + ht]),
            logit_b=aligned(self.logit_b[q_lo:q_lo + qt]),
            local_p=aligned(local_p),
            out_b=aligned(self.out_b[:, out_cols]).reshape(-1),
            j_lo=j_lo, jt=jt, s_lo=s_lo, st=st, h_lo=h_lo, ht=ht, q_lo=q_lo, qt=qt)

    def weight_bytes(self, precision: str) -> int:
        """Bytes of matrix weights read per sample at batch 1 (and their scales)."""
        shard = self.shard(0, 1, precision)
        return shard.w.nbytes + shard.s.nbytes


