"""The compiled chunk loop: register-blocked matrix micro-kernels and `_run_rows`, which
makes K samples for a group of slots (every layer, the head and sampling) in one call.
See cpu/backend.py and docs/cpu-kernel.md for the design.
"""

from __future__ import annotations

from collections import namedtuple

from numba import njit

from wavenet_core.generation.cpu.dot import ROW_PAD, group_of, pack_rows
from wavenet_core.generation.cpu.simd import (
    _JIT,
    LANES,
    PANEL,
    ROWS,
    WIDE_REGISTERS,
    _vsplat,
    _vstore,
)
from wavenet_core.generation.cpu.weights import (
    _acc_final,
    _acc_init,
    _eight_row_blocks,
    _mac,
    _wload1,
    _wload2,
    _wload4,
)

# What `_run_rows` takes, as named structures (numba compiles namedtuples of arrays/ints).
# Dims: everything the threads of a call share about the model (read only): per layer its
# ring offset, dilation and ring length (span = (k-1) d); taps = kernel size k; emb
# [classes, c] (empty for scalar input), in_w [2, c] the scalar input's weight and bias
# (empty for embedding input); widths c, padded cp (residual), zp (z), sp (skip), qp
# (outputs), m mel channels, nout outputs; scale the residual scale; out_kind 0 softmax,
# 1 mol (`mixtures`), 2 gaussian, lsm their log_scale_min. An excitation model
# (docs/excitation.md): order its lpc_order (0: none), pred_w [c] the prediction's input
# vector, thresholds [classes - 1] the mu-law code thresholds of its input, table
# [classes] the excitation codes' values (all three empty for other models).
Dims = namedtuple("Dims", "offsets dilations spans taps emb in_w c cp zp sp qp m nout scale "
                          "out_kind mixtures lsm order pred_w thresholds table")

# Shard: one thread's column slice of every matrix, in one weight format (cpu/weights.py):
# gate columns [filter J | gate J] for its z channels J = [j_lo, j_lo + jt), out columns
# [residual (all cp) | skip S = [s_lo, s_lo + st)], head columns [h_lo, h_lo + ht), logit
# columns [q_lo, q_lo + qt). w: the weights, s: int8 column scales (else empty), *_off/_soff:
# each matrix's start in w and s, head_b/logit_b: the bias slices, local_p: the [L, m, 2jt]
# mel projections (float32), out_b: [L, cp + st] residual and skip biases (else empty).
Shard = namedtuple("Shard", "w s gate_off gate_soff out_off out_soff head_off head_soff "
                            "logit_off logit_soff head_b logit_b local_p out_b "
                            "j_lo jt s_lo st h_lo ht q_lo qt")
# Call: the slots of this call and the state they live in; ring_rows [n]: each slot's rows
# in `ring` (the slots themselves; in split mode thread p > 0 reads and writes a private
# copy of the call's rings, rows 0..n-1, so no ring row crosses cores); bias: [n, L, 2jt]
# gate bias (the speaker folded in, this shard's columns); mel frames [n, F, m] with
# per-row phase [n] and hop (mel_frames.MelFrames: row r's step k interpolates frames
# (phase[r] + k) // hop and the next; per-sample rows are frames of hop 1); forced [n, K]
# teacher-forced codes, or forced_v [n, K] values for scalar input (K = 0: sample), codes
# [n, K] out, logits [n, K, nout] out (K = 0: not kept); an excitation model's lpc
# [n, K, order] coefficient rows of the samples made (or predicted) and lpc_history
# [slots, order] the state's LPC histories, newest first (empty for other models);
# shaping [n, K, 2] each sample's (temperature, floor) in place of the slot's temperature
# (voicing-shaped sampling, generation/shaping.py; K = 0: the slots' temperatures).
Call = namedtuple("Call", "slots num_steps ring ring_rows positions next_input next_value seed "
                          "temperature bias frames phase hop forced forced_v codes logits "
                          "lpc lpc_history shaping")
# Team: this thread's number, the team size, the barrier counters and the buffers the team
# shares: z [2, n, zp] (double buffered by layer), act/hid [n, sp], lg [n, qp], x [n, cp]
# the residual stream when the team splits the residual: res_all > 0 (a multiple of the
# panel width) columns [0, res_all) of it are cut into whole panels, this thread's
# [res_lo, res_hi); columns [res_all, cp) every thread computes (res_all = 0: every thread
# computes the whole residual, as batch 1 on a small model does).
Team = namedtuple("Team", "thread threads flags z act hid lg x res_lo res_hi res_all")

# -- matrix micro-kernels ----------------------------------------------------------------
# y[r, o] = init[r, o] + sum_i w[i, o] * x[r, i], one FMA chain per element in input order.
# Weights: n_in rows of `ld` values, the first at flat index p; a kernel covers 64 (x4) or
# 16 (x1) columns of them. Rows of x start at xo + r * xld, of init at io + r * ild (ild
# may be 0: one bias row for all), of y at yo + r * yld; flat indices into 1-D arrays,
# io and yo already include the output column; so indexes the column's int8 scale.
# init may be y itself.

@njit(**_JIT)
def _k8x2(w, s, p, ld, n_in, x, xo, xld, init, io, ild, y, yo, yld, so):
    """8 rows x 32 outputs: with 16 accumulators, twice the rows of `_k4x4` per weight
    load, so half the weight unpacking per FMA (bf16, int8) for groups of 8 or more."""
    i0 = io + 0 * ild
    i1 = io + 1 * ild
    i2 = io + 2 * ild
    i3 = io + 3 * ild
    i4 = io + 4 * ild
    i5 = io + 5 * ild
    i6 = io + 6 * ild
    i7 = io + 7 * ild
    x0 = x[xo + 0 * xld:]
    x1 = x[xo + 1 * xld:]
    x2 = x[xo + 2 * xld:]
    x3 = x[xo + 3 * xld:]
    x4 = x[xo + 4 * xld:]
    x5 = x[xo + 5 * xld:]
    x6 = x[xo + 6 * xld:]
    x7 = x[xo + 7 * xld:]
    a00 = _acc_init(w, init, i0, x0, n_in)
    a01 = _acc_init(w, init, i0 + 16, x0, n_in)
    a10 = _acc_init(w, init, i1, x1, n_in)
    a11 = _acc_init(w, init, i1 + 16, x1, n_in)
    a20 = _acc_init(w, init, i2, x2, n_in)
    a21 = _acc_init(w, init, i2 + 16, x2, n_in)
    a30 = _acc_init(w, init, i3, x3, n_in)
    a31 = _acc_init(w, init, i3 + 16, x3, n_in)
    a40 = _acc_init(w, init, i4, x4, n_in)
    a41 = _acc_init(w, init, i4 + 16, x4, n_in)
    a50 = _acc_init(w, init, i5, x5, n_in)
    a51 = _acc_init(w, init, i5 + 16, x5, n_in)
    a60 = _acc_init(w, init, i6, x6, n_in)
    a61 = _acc_init(w, init, i6 + 16, x6, n_in)
    a70 = _acc_init(w, init, i7, x7, n_in)
    a71 = _acc_init(w, init, i7 + 16, x7, n_in)
    for i in range(n_in):
        w0, w1 = _wload2(w, p)
        b = _vsplat(x0[i])
        a00 = _mac(w, w0, b, a00)
        a01 = _mac(w, w1, b, a01)
        b = _vsplat(x1[i])
        a10 = _mac(w, w0, b, a10)
        a11 = _mac(w, w1, b, a11)
        b = _vsplat(x2[i])
        a20 = _mac(w, w0, b, a20)
        a21 = _mac(w, w1, b, a21)
        b = _vsplat(x3[i])
        a30 = _mac(w, w0, b, a30)
        a31 = _mac(w, w1, b, a31)
        b = _vsplat(x4[i])
        a40 = _mac(w, w0, b, a40)
        a41 = _mac(w, w1, b, a41)
        b = _vsplat(x5[i])
        a50 = _mac(w, w0, b, a50)
        a51 = _mac(w, w1, b, a51)
        b = _vsplat(x6[i])
        a60 = _mac(w, w0, b, a60)
        a61 = _mac(w, w1, b, a61)
        b = _vsplat(x7[i])
        a70 = _mac(w, w0, b, a70)
        a71 = _mac(w, w1, b, a71)
        p += ld
    _vstore(y, yo + 0 * yld, _acc_final(w, a00, s, so, init, i0, x0, n_in))
    _vstore(y, yo + 0 * yld + 16, _acc_final(w, a01, s, so + 16, init, i0 + 16, x0, n_in))
    _vstore(y, yo + 1 * yld, _acc_final(w, a10, s, so, init, i1, x1, n_in))
    _vstore(y, yo + 1 * yld + 16, _acc_final(w, a11, s, so + 16, init, i1 + 16, x1, n_in))
    _vstore(y, yo + 2 * yld, _acc_final(w, a20, s, so, init, i2, x2, n_in))
    _vstore(y, yo + 2 * yld + 16, _acc_final(w, a21, s, so + 16, init, i2 + 16, x2, n_in))
    _vstore(y, yo + 3 * yld, _acc_final(w, a30, s, so, init, i3, x3, n_in))
    _vstore(y, yo + 3 * yld + 16, _acc_final(w, a31, s, so + 16, init, i3 + 16, x3, n_in))
    _vstore(y, yo + 4 * yld, _acc_final(w, a40, s, so, init, i4, x4, n_in))
    _vstore(y, yo + 4 * yld + 16, _acc_final(w, a41, s, so + 16, init, i4 + 16, x4, n_in))
    _vstore(y, yo + 5 * yld, _acc_final(w, a50, s, so, init, i5, x5, n_in))
    _vstore(y, yo + 5 * yld + 16, _acc_final(w, a51, s, so + 16, init, i5 + 16, x5, n_in))
    _vstore(y, yo + 6 * yld, _acc_final(w, a60, s, so, init, i6, x6, n_in))
    _vstore(y, yo + 6 * yld + 16, _acc_final(w, a61, s, so + 16, init, i6 + 16, x6, n_in))
    _vstore(y, yo + 7 * yld, _acc_final(w, a70, s, so, init, i7, x7, n_in))
    _vstore(y, yo + 7 * yld + 16, _acc_final(w, a71, s, so + 16, init, i7 + 16, x7, n_in))


@njit(**_JIT)
def _k2x2(w, s, p, ld, n_in, x, xo, xld, init, io, ild, y, yo, yld, so):
    """2 rows x 32 outputs: 4 accumulators, for AVX2's 16 registers (a 16-lane vector
    takes two of them), where the wider blocks spill."""
    i0 = io
    i1 = io + ild
    x0 = x[xo:]
    x1 = x[xo + xld:]
    a00 = _acc_init(w, init, i0, x0, n_in)
    a01 = _acc_init(w, init, i0 + 16, x0, n_in)
    a10 = _acc_init(w, init, i1, x1, n_in)
    a11 = _acc_init(w, init, i1 + 16, x1, n_in)
    for i in range(n_in):
        w0, w1 = _wload2(w, p)
        b = _vsplat(x0[i])
        a00 = _mac(w, w0, b, a00)
        a01 = _mac(w, w1, b, a01)
        b = _vsplat(x1[i])
        a10 = _mac(w, w0, b, a10)
        a11 = _mac(w, w1, b, a11)
        p += ld
    _vstore(y, yo, _acc_final(w, a00, s, so, init, i0, x0, n_in))
    _vstore(y, yo + 16, _acc_final(w, a01, s, so + 16, init, i0 + 16, x0, n_in))
    _vstore(y, yo + yld, _acc_final(w, a10, s, so, init, i1, x1, n_in))
    _vstore(y, yo + yld + 16, _acc_final(w, a11, s, so + 16, init, i1 + 16, x1, n_in))


@njit(**_JIT)
def _k4x4(w, s, p, ld, n_in, x, xo, xld, init, io, ild, y, yo, yld, so):
    i0 = io
    i1 = i0 + ild
    i2 = i1 + ild
    i3 = i2 + ild
    x0 = x[xo:]
    x1 = x[xo + xld:]
    x2 = x[xo + 2 * xld:]
    x3 = x[xo + 3 * xld:]
    a00 = _acc_init(w, init, i0, x0, n_in)
    a01 = _acc_init(w, init, i0 + 16, x0, n_in)
    a02 = _acc_init(w, init, i0 + 32, x0, n_in)
    a03 = _acc_init(w, init, i0 + 48, x0, n_in)
    a10 = _acc_init(w, init, i1, x1, n_in)
    a11 = _acc_init(w, init, i1 + 16, x1, n_in)
    a12 = _acc_init(w, init, i1 + 32, x1, n_in)
    a13 = _acc_init(w, init, i1 + 48, x1, n_in)
    a20 = _acc_init(w, init, i2, x2, n_in)
    a21 = _acc_init(w, init, i2 + 16, x2, n_in)
    a22 = _acc_init(w, init, i2 + 32, x2, n_in)
    a23 = _acc_init(w, init, i2 + 48, x2, n_in)
    a30 = _acc_init(w, init, i3, x3, n_in)
    a31 = _acc_init(w, init, i3 + 16, x3, n_in)
    a32 = _acc_init(w, init, i3 + 32, x3, n_in)
    a33 = _acc_init(w, init, i3 + 48, x3, n_in)
    for i in range(n_in):
        w0, w1, w2, w3 = _wload4(w, p)
        b = _vsplat(x0[i])
        a00 = _mac(w, w0, b, a00)
        a01 = _mac(w, w1, b, a01)
        a02 = _mac(w, w2, b, a02)
        a03 = _mac(w, w3, b, a03)
        b = _vsplat(x1[i])
        a10 = _mac(w, w0, b, a10)
        a11 = _mac(w, w1, b, a11)
        a12 = _mac(w, w2, b, a12)
        a13 = _mac(w, w3, b, a13)
        b = _vsplat(x2[i])
        a20 = _mac(w, w0, b, a20)
        a21 = _mac(w, w1, b, a21)
        a22 = _mac(w, w2, b, a22)
        a23 = _mac(w, w3, b, a23)
        b = _vsplat(x3[i])
        a30 = _mac(w, w0, b, a30)
        a31 = _mac(w, w1, b, a31)
        a32 = _mac(w, w2, b, a32)
        a33 = _mac(w, w3, b, a33)
        p += ld
    y0 = yo
    y1 = y0 + yld
    y2 = y1 + yld
    y3 = y2 + yld
    _vstore(y, y0, _acc_final(w, a00, s, so, init, i0, x0, n_in))
    _vstore(y, y0 + 16, _acc_final(w, a01, s, so + 16, init, i0 + 16, x0, n_in))
    _vstore(y, y0 + 32, _acc_final(w, a02, s, so + 32, init, i0 + 32, x0, n_in))
    _vstore(y, y0 + 48, _acc_final(w, a03, s, so + 48, init, i0 + 48, x0, n_in))
    _vstore(y, y1, _acc_final(w, a10, s, so, init, i1, x1, n_in))
    _vstore(y, y1 + 16, _acc_final(w, a11, s, so + 16, init, i1 + 16, x1, n_in))
    _vstore(y, y1 + 32, _acc_final(w, a12, s, so + 32, init, i1 + 32, x1, n_in))
    _vstore(y, y1 + 48, _acc_final(w, a13, s, so + 48, init, i1 + 48, x1, n_in))
    _vstore(y, y2, _acc_final(w, a20, s, so, init, i2, x2, n_in))
    _vstore(y, y2 + 16, _acc_final(w, a21, s, so + 16, init, i2 + 16, x2, n_in))
    _vstore(y, y2 + 32, _acc_final(w, a22, s, so + 32, init, i2 + 32, x2, n_in))
    _vstore(y, y2 + 48, _acc_final(w, a23, s, so + 48, init, i2 + 48, x2, n_in))
    _vstore(y, y3, _acc_final(w, a30, s, so, init, i3, x3, n_in))
    _vstore(y, y3 + 16, _acc_final(w, a31, s, so + 16, init, i3 + 16, x3, n_in))
    _vstore(y, y3 + 32, _acc_final(w, a32, s, so + 32, init, i3 + 32, x3, n_in))
    _vstore(y, y3 + 48, _acc_final(w, a33, s, so + 48, init, i3 + 48, x3, n_in))


@njit(**_JIT)
def _k4x1(w, s, p, ld, n_in, x, xo, xld, init, io, ild, y, yo, yld, so):
    x0 = x[xo:]
    x1 = x[xo + xld:]
    x2 = x[xo + 2 * xld:]
    x3 = x[xo + 3 * xld:]
    a0 = _acc_init(w, init, io, x0, n_in)
    a1 = _acc_init(w, init, io + ild, x1, n_in)
    a2 = _acc_init(w, init, io + 2 * ild, x2, n_in)
    a3 = _acc_init(w, init, io + 3 * ild, x3, n_in)
    for i in range(n_in):
        w0 = _wload1(w, p)
        a0 = _mac(w, w0, _vsplat(x0[i]), a0)
        a1 = _mac(w, w0, _vsplat(x1[i]), a1)
        a2 = _mac(w, w0, _vsplat(x2[i]), a2)
        a3 = _mac(w, w0, _vsplat(x3[i]), a3)
        p += ld
    _vstore(y, yo, _acc_final(w, a0, s, so, init, io, x0, n_in))
    _vstore(y, yo + yld, _acc_final(w, a1, s, so, init, io + ild, x1, n_in))
    _vstore(y, yo + 2 * yld, _acc_final(w, a2, s, so, init, io + 2 * ild, x2, n_in))
    _vstore(y, yo + 3 * yld, _acc_final(w, a3, s, so, init, io + 3 * ild, x3, n_in))


@njit(**_JIT)
def _k1x4(w, s, p, ld, n_in, x, xo, init, io, y, yo, so):
    xr = x[xo:]
    a0 = _acc_init(w, init, io, xr, n_in)
    a1 = _acc_init(w, init, io + 16, xr, n_in)
    a2 = _acc_init(w, init, io + 32, xr, n_in)
    a3 = _acc_init(w, init, io + 48, xr, n_in)
    for i in range(n_in):
        b = _vsplat(xr[i])
        w0, w1, w2, w3 = _wload4(w, p)
        a0 = _mac(w, w0, b, a0)
        a1 = _mac(w, w1, b, a1)
        a2 = _mac(w, w2, b, a2)
        a3 = _mac(w, w3, b, a3)
        p += ld
    _vstore(y, yo, _acc_final(w, a0, s, so, init, io, xr, n_in))
    _vstore(y, yo + 16, _acc_final(w, a1, s, so + 16, init, io + 16, xr, n_in))
    _vstore(y, yo + 32, _acc_final(w, a2, s, so + 32, init, io + 32, xr, n_in))
    _vstore(y, yo + 48, _acc_final(w, a3, s, so + 48, init, io + 48, xr, n_in))


@njit(**_JIT)
def _k1x8(w, s, p, q, ld, n_in, x, xo, init, io, y, yo, so):
    """One row x two 64-wide panels (at p and q): 8 independent chains, where `_k1x4`'s 4
    leave half of the FMA units waiting on the previous FMA's latency (batch 1)."""
    xr = x[xo:]
    a0 = _acc_init(w, init, io, xr, n_in)
    a1 = _acc_init(w, init, io + 16, xr, n_in)
    a2 = _acc_init(w, init, io + 32, xr, n_in)
    a3 = _acc_init(w, init, io + 48, xr, n_in)
    a4 = _acc_init(w, init, io + 64, xr, n_in)
    a5 = _acc_init(w, init, io + 80, xr, n_in)
    a6 = _acc_init(w, init, io + 96, xr, n_in)
    a7 = _acc_init(w, init, io + 112, xr, n_in)
    for i in range(n_in):
        b = _vsplat(xr[i])
        w0, w1, w2, w3 = _wload4(w, p)
        w4, w5, w6, w7 = _wload4(w, q)
        a0 = _mac(w, w0, b, a0)
        a1 = _mac(w, w1, b, a1)
        a2 = _mac(w, w2, b, a2)
        a3 = _mac(w, w3, b, a3)
        a4 = _mac(w, w4, b, a4)
        a5 = _mac(w, w5, b, a5)
        a6 = _mac(w, w6, b, a6)
        a7 = _mac(w, w7, b, a7)
        p += ld
        q += ld
    _vstore(y, yo, _acc_final(w, a0, s, so, init, io, xr, n_in))
    _vstore(y, yo + 16, _acc_final(w, a1, s, so + 16, init, io + 16, xr, n_in))
    _vstore(y, yo + 32, _acc_final(w, a2, s, so + 32, init, io + 32, xr, n_in))
    _vstore(y, yo + 48, _acc_final(w, a3, s, so + 48, init, io + 48, xr, n_in))
    _vstore(y, yo + 64, _acc_final(w, a4, s, so + 64, init, io + 64, xr, n_in))
    _vstore(y, yo + 80, _acc_final(w, a5, s, so + 80, init, io + 80, xr, n_in))
    _vstore(y, yo + 96, _acc_final(w, a6, s, so + 96, init, io + 96, xr, n_in))
    _vstore(y, yo + 112, _acc_final(w, a7, s, so + 112, init, io + 112, xr, n_in))


@njit(**_JIT)
def _k1x2(w, s, p, ld, n_in, x, xo, init, io, y, yo, so):
    """One row x two 16-wide tail vectors: two chains instead of one after the other."""
    xr = x[xo:]
    a0 = _acc_init(w, init, io, xr, n_in)
    a1 = _acc_init(w, init, io + 16, xr, n_in)
    for i in range(n_in):
        b = _vsplat(xr[i])
        a0 = _mac(w, _wload1(w, p), b, a0)
        a1 = _mac(w, _wload1(w, p + 16), b, a1)
        p += ld
    _vstore(y, yo, _acc_final(w, a0, s, so, init, io, xr, n_in))
    _vstore(y, yo + 16, _acc_final(w, a1, s, so + 16, init, io + 16, xr, n_in))


@njit(**_JIT)
def _k1x1(w, s, p, ld, n_in, x, xo, init, io, y, yo, so):
    xr = x[xo:]
    a0 = _acc_init(w, init, io, xr, n_in)
    for i in range(n_in):
        a0 = _mac(w, _wload1(w, p), _vsplat(xr[i]), a0)
        p += ld
    _vstore(y, yo, _acc_final(w, a0, s, so, init, io, xr, n_in))


@njit(**_JIT)
def _matmul(w, s, wo, so, n_in, n_out, x, xo, xld, init, io, ild, y, yo, yld, n, scratch):
    """y[r, :n_out] = init[r, :n_out] + x[r, :n_in] @ W for r < n; W packed at w[wo:]
    by `cpu.weights.encode_panels` (panels of 64 outputs, then the tail), its int8 column
    scales (if any) at s[so:]. The dot formats (cpu/dot.py) first pack the rows of x into
    `scratch` (at least n * scratch_words(n_in) floats), one word per group of inputs."""
    group = group_of(w)
    if group == 1:
        _panels(w, s, wo, so, n_in, n_out, x, xo, xld, init, io, ild, y, yo, yld, n)
    else:
        qld = scratch_words(n_in)
        pack_rows(w, x, xo, xld, n_in, n, scratch, qld)
        _panels(w, s, wo, so, n_in // group, n_out, scratch, 0, qld, init, io, ild,
                y, yo, yld, n)


@njit(inline="always", **_JIT)
def scratch_words(n_in):
    """Scratch floats per row for a matrix of n_in inputs in any dot format."""
    return n_in // 2 + ROW_PAD


@njit(**_JIT)
def _panels(w, s, wo, so, n_in, n_out, x, xo, xld, init, io, ild, y, yo, yld, n):
    """`_matmul` on rows of x already in w's format (n_in: words per row)."""
    full = n_out // PANEL
    for blk in range(full):
        p = wo + blk * n_in * PANEL
        col = blk * PANEL
        r = 0
        if not WIDE_REGISTERS:            # AVX2: pairs of rows x 32, then rows x 64
            while r + 2 <= n:
                for half in range(0, PANEL, 2 * LANES):
                    _k2x2(w, s, p + half, PANEL, n_in, x, xo + r * xld, xld, init,
                          io + col + half + r * ild, ild, y, yo + col + half + r * yld, yld,
                          so + col + half)
                r += 2
            if r < n:
                _k1x4(w, s, p, PANEL, n_in, x, xo + r * xld, init, io + col + r * ild,
                      y, yo + col + r * yld, so + col)
            continue
        while _eight_row_blocks(w) and r + 2 * ROWS <= n:
            for half in range(0, PANEL, 2 * LANES):
                _k8x2(w, s, p + half, PANEL, n_in, x, xo + r * xld, xld, init,
                      io + col + half + r * ild, ild, y, yo + col + half + r * yld, yld,
                      so + col + half)
            r += 2 * ROWS
        while r + ROWS <= n:
            _k4x4(w, s, p, PANEL, n_in, x, xo + r * xld, xld, init, io + col + r * ild, ild,
                  y, yo + col + r * yld, yld, so + col)
            r += ROWS
        while r < n:
            if blk % 2 == 0 and blk + 1 < full:     # this panel and the next one
                _k1x8(w, s, p, p + n_in * PANEL, PANEL, n_in, x, xo + r * xld, init,
                      io + col + r * ild, y, yo + col + r * yld, so + col)
            elif blk % 2 == 0:                      # the last, odd panel
                _k1x4(w, s, p, PANEL, n_in, x, xo + r * xld, init, io + col + r * ild,
                      y, yo + col + r * yld, so + col)
            r += 1
    tail = n_out - full * PANEL
    if tail:
        p = wo + full * n_in * PANEL
        for v in range(0, tail, LANES):
            col = full * PANEL + v
            r = 0
            while r + ROWS <= n:
                _k4x1(w, s, p + v, tail, n_in, x, xo + r * xld, xld, init,
                      io + col + r * ild, ild, y, yo + col + r * yld, yld, so + col)
                r += ROWS
            while r < n:
                if v % (2 * LANES) == 0 and v + LANES < tail:     # this vector and the next
                    _k1x2(w, s, p + v, tail, n_in, x, xo + r * xld, init, io + col + r * ild,
                          y, yo + col + r * yld, so + col)
                elif v % (2 * LANES) == 0:                       # the last, odd vector
                    _k1x1(w, s, p + v, tail, n_in, x, xo + r * xld, init, io + col + r * ild,
                          y, yo + col + r * yld, so + col)
                r += 1
