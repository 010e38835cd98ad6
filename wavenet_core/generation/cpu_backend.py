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
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

from wavenet_core.generation.packing import pack_weights
from wavenet_core.generation.sampling import MASK32, MIX_1, MIX_2, SEED_SALT
from wavenet_core.generation.state import GenerationState
from wavenet_core.model import WaveNet

# Every fast-math flag except `reassoc` (and `arcp`/`afn`): sums keep their written order.
FASTMATH = {"nnan", "ninf", "nsz", "contract"}
_JIT = dict(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy")

LANES = 16            # floats per vector
PANEL = 64            # outputs per weight panel (4 vectors)
ROWS = 4              # rows per register block
SUB_STEPS = 32        # steps whose local projections are precomputed together

# -- 16-lane float32 vectors for numba ---------------------------------------------------

_LLVEC = ir.VectorType(ir.FloatType(), LANES)


class _F32x16(types.Type):
    def __init__(self):
        super().__init__(name="f32x16")


F32X16 = _F32x16()


@register_model(_F32x16)
class _F32x16Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _LLVEC)


def _element_pointer(context, builder, arrty, arr, index):
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.gep(data, [index])


@intrinsic
def _vload(typingctx, arr, index):
    """arr.flat[index:index + 16] as a vector (arr contiguous float32)."""
    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.load(builder.bitcast(ptr, _LLVEC.as_pointer()), align=4)
    return F32X16(arr, index), codegen


@intrinsic
def _vstore(typingctx, arr, index, vec):
    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        builder.store(args[2], builder.bitcast(ptr, _LLVEC.as_pointer()), align=4)
        return context.get_dummy_value()
    return types.none(arr, index, vec), codegen


@intrinsic
def _vsplat(typingctx, value):
    def codegen(context, builder, sig, args):
        lane0 = builder.insert_element(ir.Constant(_LLVEC, ir.Undefined), args[0],
                                       ir.Constant(ir.IntType(32), 0))
        mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
        return builder.shuffle_vector(lane0, ir.Constant(_LLVEC, ir.Undefined), mask)
    return F32X16(types.float32), codegen


@intrinsic
def _vfma(typingctx, a, b, c):
    """a * b + c, rounded once (llvm.fma: the same bits on every code path)."""
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_LLVEC, [_LLVEC] * 3), "llvm.fma.v16f32")
        return builder.call(fn, args)
    return F32X16(F32X16, F32X16, F32X16), codegen


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the low 32 bits of the integer `bits`."""
    def codegen(context, builder, sig, args):
        low = builder.trunc(args[0], ir.IntType(32))
        return builder.bitcast(low, ir.FloatType())
    return types.float32(bits), codegen


@intrinsic
def _address(typingctx, arr):
    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.ptrtoint(data, ir.IntType(64))
    return types.int64(arr), codegen


# -- scalar helpers ----------------------------------------------------------------------
# (Loops index zero-based views: an index numba cannot prove non-negative gets a
# wraparound select that turns LLVM's vector loads into gathers.)

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
_EXP_MIN = _F(-87.0)
_LOG2E = _F(1.44269504088896341)
_LN2_HI = _F(0.693359375)
_LN2_LO = _F(-2.12194440e-4)
_E0 = _F(1.9875691500e-4)
_E1 = _F(1.3981999507e-3)
_E2 = _F(8.3334519073e-3)
_E3 = _F(4.1665795894e-2)
_E4 = _F(1.6666665459e-1)
_E5 = _F(5.0000001201e-1)
_U24 = _F(1.0 / (1 << 24))

_MASK = np.uint64(MASK32)
_SALT = np.uint64(SEED_SALT)
_M1 = np.uint64(MIX_1)
_M2 = np.uint64(MIX_2)
_S8 = np.uint64(8)
_S15 = np.uint64(15)
_S16 = np.uint64(16)


@njit(inline="always", **_JIT)
def _tanh(x):
    """Eigen's rational float tanh, |error| < 4e-7."""
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
def _exp_neg(x):
    """exp(x) for x <= 0 (Cephes expf: ~1 ulp), 0-ish below -87; vectorizable."""
    x = max(x, _EXP_MIN)
    n = np.floor(x * _LOG2E + _HALF)
    r = x - n * _LN2_HI - n * _LN2_LO
    p = _E0
    p = p * r + _E1
    p = p * r + _E2
    p = p * r + _E3
    p = p * r + _E4
    p = p * r + _E5
    p = p * (r * r) + r + _ONE
    return p * _float_from_bits((np.int64(n) + 127) << 23)


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


@njit(**_JIT)
def _sample(logits, temperature, uniform, probs):
    """`sampling.sample_codes` for one row: greedy (first maximum) at temperature 0,
    else count(cdf <= u * cdf[-1]) over softmax(logits / T), capped at classes - 1."""
    classes = logits.shape[0]
    if temperature > _ZERO:
        for o in range(classes):
            probs[o] = logits[o] / temperature
        peak = probs[0]
        for o in range(classes):
            peak = max(peak, probs[o])
        for o in range(classes):
            probs[o] = _exp_neg(probs[o] - peak)
        total = _ZERO
        for o in range(classes):
            total = total + probs[o]
            probs[o] = total
        target = uniform * total
        drawn = 0
        for o in range(classes):
            drawn += np.int64(probs[o] <= target)
        return min(drawn, classes - 1)
    top = logits[0]
    for o in range(classes):
        top = max(top, logits[o])
    for o in range(classes):
        if logits[o] == top:
            return o
    return 0


@njit(**_JIT)
def _aligned_zeros(n):
    """float32 zeros, the first element 64-byte aligned."""
    buf = np.zeros(n + LANES, np.float32)
    skip = ((64 - _address(buf) % 64) % 64) // 4
    return buf[skip:skip + n]


# -- matrix micro-kernels ----------------------------------------------------------------
# y[r, o] = init[r, o] + sum_i w[i, o] * x[r, i], one FMA chain per element in input order.
# Weights: n_in rows of `ld` floats, the first at flat index p; a kernel covers 64 (x4) or
# 16 (x1) columns of them. Rows of x start at xo + r * xld, of init at io + r * ild (ild
# may be 0: one bias row for all), of y at yo + r * yld; flat indices into 1-D arrays,
# io and yo already include the output column. init may be y itself.

@njit(**_JIT)
def _k4x4(w, p, ld, n_in, x, xo, xld, init, io, ild, y, yo, yld):
    i0 = io
    i1 = i0 + ild
    i2 = i1 + ild
    i3 = i2 + ild
    a00 = _vload(init, i0)
    a01 = _vload(init, i0 + 16)
    a02 = _vload(init, i0 + 32)
    a03 = _vload(init, i0 + 48)
    a10 = _vload(init, i1)
    a11 = _vload(init, i1 + 16)
    a12 = _vload(init, i1 + 32)
    a13 = _vload(init, i1 + 48)
    a20 = _vload(init, i2)
    a21 = _vload(init, i2 + 16)
    a22 = _vload(init, i2 + 32)
    a23 = _vload(init, i2 + 48)
    a30 = _vload(init, i3)
    a31 = _vload(init, i3 + 16)
    a32 = _vload(init, i3 + 32)
    a33 = _vload(init, i3 + 48)
    x0 = x[xo:]
    x1 = x[xo + xld:]
    x2 = x[xo + 2 * xld:]
    x3 = x[xo + 3 * xld:]
    for i in range(n_in):
        w0 = _vload(w, p)
        w1 = _vload(w, p + 16)
        w2 = _vload(w, p + 32)
        w3 = _vload(w, p + 48)
        b = _vsplat(x0[i])
        a00 = _vfma(w0, b, a00)
        a01 = _vfma(w1, b, a01)
        a02 = _vfma(w2, b, a02)
        a03 = _vfma(w3, b, a03)
        b = _vsplat(x1[i])
        a10 = _vfma(w0, b, a10)
        a11 = _vfma(w1, b, a11)
        a12 = _vfma(w2, b, a12)
        a13 = _vfma(w3, b, a13)
        b = _vsplat(x2[i])
        a20 = _vfma(w0, b, a20)
        a21 = _vfma(w1, b, a21)
        a22 = _vfma(w2, b, a22)
        a23 = _vfma(w3, b, a23)
        b = _vsplat(x3[i])
        a30 = _vfma(w0, b, a30)
        a31 = _vfma(w1, b, a31)
        a32 = _vfma(w2, b, a32)
        a33 = _vfma(w3, b, a33)
        p += ld
    y0 = yo
    y1 = y0 + yld
    y2 = y1 + yld
    y3 = y2 + yld
    _vstore(y, y0, a00)
    _vstore(y, y0 + 16, a01)
    _vstore(y, y0 + 32, a02)
    _vstore(y, y0 + 48, a03)
    _vstore(y, y1, a10)
    _vstore(y, y1 + 16, a11)
    _vstore(y, y1 + 32, a12)
    _vstore(y, y1 + 48, a13)
    _vstore(y, y2, a20)
    _vstore(y, y2 + 16, a21)
    _vstore(y, y2 + 32, a22)
    _vstore(y, y2 + 48, a23)
    _vstore(y, y3, a30)
    _vstore(y, y3 + 16, a31)
    _vstore(y, y3 + 32, a32)
    _vstore(y, y3 + 48, a33)


@njit(**_JIT)
def _k4x1(w, p, ld, n_in, x, xo, xld, init, io, ild, y, yo, yld):
    a0 = _vload(init, io)
    a1 = _vload(init, io + ild)
    a2 = _vload(init, io + 2 * ild)
    a3 = _vload(init, io + 3 * ild)
    x0 = x[xo:]
    x1 = x[xo + xld:]
    x2 = x[xo + 2 * xld:]
    x3 = x[xo + 3 * xld:]
    for i in range(n_in):
        w0 = _vload(w, p)
        a0 = _vfma(w0, _vsplat(x0[i]), a0)
        a1 = _vfma(w0, _vsplat(x1[i]), a1)
        a2 = _vfma(w0, _vsplat(x2[i]), a2)
        a3 = _vfma(w0, _vsplat(x3[i]), a3)
        p += ld
    _vstore(y, yo, a0)
    _vstore(y, yo + yld, a1)
    _vstore(y, yo + 2 * yld, a2)
    _vstore(y, yo + 3 * yld, a3)


@njit(**_JIT)
def _k1x4(w, p, ld, n_in, x, xo, init, io, y, yo):
    a0 = _vload(init, io)
    a1 = _vload(init, io + 16)
    a2 = _vload(init, io + 32)
    a3 = _vload(init, io + 48)
    xr = x[xo:]
    for i in range(n_in):
        b = _vsplat(xr[i])
        a0 = _vfma(_vload(w, p), b, a0)
        a1 = _vfma(_vload(w, p + 16), b, a1)
        a2 = _vfma(_vload(w, p + 32), b, a2)
        a3 = _vfma(_vload(w, p + 48), b, a3)
        p += ld
    _vstore(y, yo, a0)
    _vstore(y, yo + 16, a1)
    _vstore(y, yo + 32, a2)
    _vstore(y, yo + 48, a3)


@njit(**_JIT)
def _k1x1(w, p, ld, n_in, x, xo, init, io, y, yo):
    a0 = _vload(init, io)
    xr = x[xo:]
    for i in range(n_in):
        a0 = _vfma(_vload(w, p), _vsplat(xr[i]), a0)
        p += ld
    _vstore(y, yo, a0)


@njit(**_JIT)
def _matmul(w, wo, n_in, n_out, x, xo, xld, init, io, ild, y, yo, yld, n):
    """y[r, :n_out] = init[r, :n_out] + x[r, :n_in] @ W for r < n; W packed at w[wo:]
    by `_panels` (panels of 64 outputs, then the tail)."""
    full = n_out // PANEL
    for blk in range(full):
        p = wo + blk * n_in * PANEL
        col = blk * PANEL
        r = 0
        while r + ROWS <= n:
            _k4x4(w, p, PANEL, n_in, x, xo + r * xld, xld, init, io + col + r * ild, ild,
                  y, yo + col + r * yld, yld)
            r += ROWS
        while r < n:
            _k1x4(w, p, PANEL, n_in, x, xo + r * xld, init, io + col + r * ild,
                  y, yo + col + r * yld)
            r += 1
    tail = n_out - full * PANEL
    if tail:
        p = wo + full * n_in * PANEL
        for v in range(0, tail, LANES):
            col = full * PANEL + v
            r = 0
            while r + ROWS <= n:
                _k4x1(w, p + v, tail, n_in, x, xo + r * xld, xld, init, io + col + r * ild,
                      ild, y, yo + col + r * yld, yld)
                r += ROWS
            while r < n:
                _k1x1(w, p + v, tail, n_in, x, xo + r * xld, init, io + col + r * ild,
                      y, yo + col + r * yld)
                r += 1


# -- the chunk loop ----------------------------------------------------------------------

@njit(**_JIT)
def _run_rows(slots, num_steps, ring, positions, next_input, seed, temperature,
              offsets, dilations, emb, wbuf, gate_off, out_off, head_off, logit_off, head_b,
              logit_b, local_p, bias, local, forced, codes_out, logits_out, cp, sp, m):
    """Run `num_steps` steps for the slots `slots` (one group, one thread).

    Padded widths: cp residual, sp skip, len(logit_b) classes; the residual stream and
    skip sum of row r live at xs[r * (cp + sp):]. bias: flat [n, L, 2cp] gate bias with
    the speaker folded in. local: flat [n, K, m] mel (m = 0 without), local_p the
    [m, 2cp] projections. forced [n, K] teacher-forced inputs (K = 0: sample and feed
    back). codes_out [n, K] receives the samples, logits_out [n, K, classes] the logits
    (its K = 0 skips them).
    """
    n = slots.shape[0]
    num_layers = dilations.shape[0]
    classes = emb.shape[0]
    c = emb.shape[1]
    qp = logit_b.shape[0]
    c2p = 2 * cp
    xw = cp + sp
    teacher = forced.shape[1] > 0
    keep_logits = logits_out.shape[1] > 0

    xs = _aligned_zeros(n * xw)         # per row: residual stream x [cp], skip sum [sp]
    gin = _aligned_zeros(n * c2p)       # per row: [x(t-d), x(t)]
    h = _aligned_zeros(n * c2p)         # per row: filter, gate pre-activations
    z = _aligned_zeros(n * cp)
    act = _aligned_zeros(n * sp)
    hid = _aligned_zeros(n * sp)
    lg = _aligned_zeros(n * qp)
    probs = np.zeros(classes, np.float32)
    pos = np.zeros(n, np.int64)
    phase = np.zeros(n * num_layers, np.int64)      # pos % dilation, kept incrementally
    for r in range(n):
        for layer in range(num_layers):
            phase[r * num_layers + layer] = positions[slots[r]] % dilations[layer]
    sub = min(SUB_STEPS, num_steps) if m > 0 else num_steps
    proj = _aligned_zeros(n * num_layers * sub * c2p if m > 0 else 0)
    proj_ld = num_layers * sub * c2p                 # proj: [n, L, sub, 2cp]

    for k0 in range(0, num_steps, sub):
        kn = min(sub, num_steps - k0)
        if m > 0:
            for r in range(n):
                for layer in range(num_layers):
                    _matmul(local_p, layer * m * c2p, m, c2p, local, (r * num_steps + k0) * m, m,
                            bias, (r * num_layers + layer) * c2p, 0,
                            proj, (r * num_layers + layer) * sub * c2p, c2p, kn)
        for kk in range(kn):
            k = k0 + kk
            for r in range(n):
                slot = slots[r]
                code = forced[r, k] if teacher else next_input[slot]
                pos[r] = positions[slot]
                e = emb[code]
                xr = xs[r * xw:(r + 1) * xw]
                for o in range(c):
                    xr[o] = e[o]
                xr[c:] = _ZERO
            for layer in range(num_layers):
                for r in range(n):
                    q = ring[slots[r], offsets[layer] + phase[r * num_layers + layer]]
                    prev = gin[r * c2p:r * c2p + c]
                    cur = gin[r * c2p + cp:r * c2p + cp + c]
                    xr = xs[r * xw:r * xw + c]
                    for o in range(c):
                        prev[o] = q[o]
                    for o in range(c):
                        cur[o] = xr[o]
                        q[o] = xr[o]
                if m > 0:
                    _matmul(wbuf, gate_off[layer], c2p, c2p, gin, 0, c2p,
                            proj, (layer * sub + kk) * c2p, proj_ld, h, 0, c2p, n)
                else:
                    _matmul(wbuf, gate_off[layer], c2p, c2p, gin, 0, c2p,
                            bias, layer * c2p, num_layers * c2p, h, 0, c2p, n)
                for r in range(n):
                    hf = h[r * c2p:r * c2p + cp]
                    hg = h[r * c2p + cp:(r + 1) * c2p]
                    zr = z[r * cp:(r + 1) * cp]
                    for o in range(cp):
                        zr[o] = _tanh(hf[o]) * (_HALF + _HALF * _tanh(_HALF * hg[o]))
                _matmul(wbuf, out_off[layer], cp, xw, z, 0, cp, xs, 0, xw, xs, 0, xw, n)
            for r in range(n):
                skip = xs[r * xw + cp:(r + 1) * xw]
                ar = act[r * sp:(r + 1) * sp]
                for o in range(sp):
                    ar[o] = max(skip[o], _ZERO)
            _matmul(wbuf, head_off, sp, sp, act, 0, sp, head_b, 0, 0, hid, 0, sp, n)
            for o in range(n * sp):
                hid[o] = max(hid[o], _ZERO)
            _matmul(wbuf, logit_off, sp, qp, hid, 0, sp, logit_b, 0, 0, lg, 0, qp, n)
            for r in range(n):
                slot = slots[r]
                positions[slot] = pos[r] + 1
                for layer in range(num_layers):
                    j = r * num_layers + layer
                    phase[j] = 0 if phase[j] + 1 == dilations[layer] else phase[j] + 1
                lr = lg[r * qp:r * qp + classes]
                if keep_logits:
                    out = logits_out[r, k]
                    for o in range(classes):
                        out[o] = lr[o]
                if not teacher:
                    code = _sample(lr, temperature[slot],
                                   counter_uniform_one(seed[slot], pos[r]), probs)
                    next_input[slot] = code
                    codes_out[r, k] = code


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
