"""Numba kernels of the fused training step (fused.py): the passes between its products.

Each kernel is one pass over a layer's rows (time-major, row t*B + b) doing what the plain
autograd forward does in several: the gate with its bias, local conditioning and speaker
bias; the residual add (with the residual bias) and the cast the next product needs; the
gate's backward with the conditioning gradient (whose sums over frames are the bias and
speaker-bias gradients); the input stream's gradient from every tap; the loss.
Arrays of bfloat16 are passed as their uint16 bits and rounded to nearest even on store,
as torch rounds; float32 arrays are read and written as they are. tanh is the CPU
kernel's vectorizable rational one (|error| < 4e-7) and sigmoid(g) = (1 + tanh(g/2)) / 2.

Local conditioning is linear interpolation of per-frame projections: the rows of a window
interpolate its frames (`mel.mel_window`), and a product commutes with that
interpolation, so `proj[b, f]` (the layer's filter and gate weights times frame f, made by
the caller) replaces the per-row product with the mel.
"""

from __future__ import annotations

import numpy as np
import torch
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from wavenet_core.generation.cpu.simd import _JIT, _exp_neg, _float_from_bits, _tanh_ratio

_F = np.float32
_ONE = _F(1.0)
_HALF = _F(0.5)
_ZERO = _F(0.0)
_ROUND = np.uint32(0x7FFF)
_SHIFT = np.uint32(16)


def numpy_view(t: torch.Tensor | None, like: np.ndarray | None = None) -> np.ndarray:
    """A tensor's memory as numpy (bfloat16 as uint16 bits); None -> an empty array of
    like's type, so a kernel compiles once whether the option is there or not."""
    if t is None:
        return np.empty((0,) * like.ndim, like.dtype)
    t = t.detach()
    return (t.view(torch.uint16) if t.dtype == torch.bfloat16 else t).numpy()


@intrinsic
def _bits(typingctx, value):
    """The bit pattern of a float32, as uint32."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.uint32(types.float32), codegen


def _get(a, i):
    """a.flat-style read of a 1-D row view as float32 (bfloat16 bits widened)."""


@overload(_get, inline="always")
def _get_impl(a, i):
    if a.dtype == types.uint16:
        return lambda a, i: _float_from_bits(np.uint32(a[i]) << _SHIFT)
    return lambda a, i: a[i]


def _put(a, i, x):
    """Store float32 x (rounded to nearest even for bfloat16 bits)."""


@overload(_put, inline="always")
def _put_impl(a, i, x):
    if a.dtype == types.uint16:
        def impl(a, i, x):
            b = _bits(x)
            a[i] = np.uint16((b + _ROUND + ((b >> _SHIFT) & np.uint32(1))) >> _SHIFT)
        return impl

    def plain(a, i, x):
        a[i] = x
    return plain


def _stored(a, x):
    """The value x reads back as after `_put` into an array like a."""


@overload(_stored, inline="always")
def _stored_impl(a, x):
    if a.dtype == types.uint16:
        def impl(a, x):
            b = _bits(x)
            b = ((b + _ROUND + ((b >> _SHIFT) & np.uint32(1))) >> _SHIFT) << _SHIFT
            return _float_from_bits(b)
        return impl
    return lambda a, x: x


@njit(inline="always", **_JIT)
def _tanh(x):
    p, q = _tanh_ratio(x)
    return p / q


@njit(**_JIT)
def gate_forward(pre, bias, proj, col, left, right, weight, first, spk, t_out, s_out, z_out):
    """t = tanh(f), s = sigmoid(g), z = t * s (each rounded as stored, as in the plain
    path) where [f | g] = pre + bias + spk[b] + the frame projections proj[b, :, col:]
    interpolated at window position first + step. A model without local or speaker
    conditioning passes zeros."""
    rows, gate = t_out.shape
    batch = left.shape[0]
    hf = np.empty(gate, np.float32)    # (separate loops and one array per half: LLVM
    hg = np.empty(gate, np.float32)    # vectorized these, not one fused loop)
    for r in range(rows):
        step = r // batch
        b = r - step * batch
        at = first + step
        w1 = weight[b, at]
        w0 = _ONE - w1
        p = pre[r]
        for half, h in ((0, hf), (gate, hg)):
            lo = proj[b, left[b, at], col + half:col + half + gate]
            hi = proj[b, right[b, at], col + half:col + half + gate]
            ph, bh, sp = p[half:half + gate], bias[half:half + gate], spk[b, half:half + gate]
            for c in range(gate):
                h[c] = _get(ph, c) + bh[c] + sp[c] + (w0 * lo[c] + w1 * hi[c])
        tr, sr, zr = t_out[r], s_out[r], z_out[r]
        for c in range(gate):
            t = _stored(tr, _tanh(hf[c]))
            s = _stored(sr, _HALF + _HALF * _tanh(_HALF * hg[c]))
            _put(tr, c, t)
            _put(sr, c, s)
            _put(zr, c, t * s)


@njit(**_JIT)
def residual_forward(x, r, bias, scale, out, out_low):
    """out = (x + r + bias) * scale (float32, the next layer's stream) and out_low = out as
    the products read it. x, out [rows, C] float32; r, out_low [rows, C]; bias [C] float32
    (empty without)."""
    rows, channels = out.shape
    b = bias if bias.shape[0] > 0 else np.zeros(channels, np.float32)
    for i in range(rows):
        xi, ri, oi, li = x[i], r[i], out[i], out_low[i]
        for c in range(channels):
            v = (xi[c] + _get(ri, c) + b[c]) * scale
            oi[c] = v
            _put(li, c, v)


@njit(**_JIT)
def gate_backward(gz, dz, t, s, gpre, g_proj, col, left, right, weight, first):
    """Gradient of the pre-activation from that of z: gz [rows, G] (from the residual
    product; empty for the last layer) plus dz [W*B, G] on the last W*B rows (the skip
    product's). Writes gpre [rows, 2G] and adds into g_proj[b, :, col:] (float32: the frame
    projections' gradient, at the two frames each row interpolates with weights summing to
    one, so its sum over frames is the gradient of a per-window bias)."""
    rows, gate = t.shape
    batch = left.shape[0]
    tail = rows - dz.shape[0]
    zero = np.zeros(gate, dz.dtype)
    g = np.empty(gate, np.float32)
    ha = np.empty(gate, np.float32)    # (one array per half: LLVM vectorizes each loop only
    hb = np.empty(gate, np.float32)    # when its stores cannot overlap)
    for r in range(rows):
        gr = gz[r] if gz.shape[0] > 0 else zero
        dr = dz[r - tail] if r >= tail else zero
        for c in range(gate):
            g[c] = _get(gr, c) + _get(dr, c)
        tr, sr, out = t[r], s[r], gpre[r]
        for c in range(gate):
            tv, sv = _get(tr, c), _get(sr, c)
            ha[c] = _stored(out, g[c] * sv * (_ONE - tv * tv))
            hb[c] = _stored(out, g[c] * tv * sv * (_ONE - sv))
        step = r // batch
        b = r - step * batch
        at = first + step
        w1 = weight[b, at]
        w0 = _ONE - w1
        for half, h in ((0, ha), (gate, hb)):
            o = out[half:half + gate]
            lo = g_proj[b, left[b, at], col + half:col + half + gate]
            for c in range(gate):
                _put(o, c, h[c])
                lo[c] += w0 * h[c]
            hi = g_proj[b, right[b, at], col + half:col + half + gate]
            for c in range(gate):
                hi[c] += w1 * h[c]


@njit(**_JIT)
def stream_backward(g_res, g_taps, shift, scale, g_in, g_in_low):
    """Gradient of a layer's input stream g_in [L_in*B, C]: the residual path's g_res
    [L*B, C] (empty for the last layer) on its last L*B rows plus tap j's gradient
    g_taps[j] [L*B, C] shifted j*dilation steps (shift = dilation * B), times `scale`
    (the residual scale of the layer below, 1 for the first); g_in_low: the same as the
    products read it."""
    rows, channels = g_in.shape
    length = g_taps.shape[1]
    span = rows - length
    has_res = g_res.shape[0] > 0
    acc = np.empty(channels, np.float32)
    for i in range(rows):
        for c in range(channels):
            acc[c] = _ZERO
        if has_res and i >= span:
            gr = g_res[i - span]
            for c in range(channels):
                acc[c] = gr[c]
        for j in range(g_taps.shape[0]):
            at = i - j * shift
            if 0 <= at < length:
                tj = g_taps[j, at]
                for c in range(channels):
                    acc[c] += _get(tj, c)
        gi, li = g_in[i], g_in_low[i]
        for c in range(channels):
            v = acc[c] * scale
            gi[c] = v
            _put(li, c, v)


@njit(**_JIT)
def cross_entropy(logits, bias, targets, scale, grad, grad_sum):
    """With x = logits[r] + bias (float32 [classes]): -log softmax(x)[targets[r]] summed
    over rows (float64), and into grad the loss's gradient times `scale`:
    (softmax(x) - onehot(targets[r])) * scale, its column sums (as stored) into grad_sum
    (float32). Maximum and sum run in 16 lanes (fixed order), so they vectorize."""
    rows, classes = logits.shape
    lanes = 16
    whole = classes - classes % lanes
    x = np.empty(classes, np.float32)
    acc = np.empty(lanes, np.float32)
    total = 0.0
    for r in range(rows):
        lr, gr = logits[r], grad[r]
        for c in range(classes):
            x[c] = _get(lr, c) + bias[c]
        for j in range(lanes):
            acc[j] = x[0]
        for c0 in range(0, whole, lanes):
            for j in range(lanes):
                acc[j] = max(acc[j], x[c0 + j])
        peak = x[0]
        for j in range(lanes):
            peak = max(peak, acc[j])
        for c in range(whole, classes):
            peak = max(peak, x[c])
        for c in range(classes):
            x[c] = _exp_neg(x[c] - peak)
        for j in range(lanes):
            acc[j] = _ZERO
        for c0 in range(0, whole, lanes):
            for j in range(lanes):
                acc[j] += x[c0 + j]
        total_exp = _ZERO
        for j in range(lanes):
            total_exp += acc[j]
        for c in range(whole, classes):
            total_exp += x[c]
        inv = _ONE / total_exp
        target = targets[r]
        x[target] -= total_exp
        for c in range(classes):
            v = _stored(gr, x[c] * inv * scale)
            _put(gr, c, v)
            grad_sum[c] += v
        total += np.log(np.float64(total_exp)) + peak - (_get(lr, target) + bias[target])
    return total
