"""The compiled chunk loop: register-blocked matrix micro-kernels and `_run_rows`, which
makes K samples for a group of slots (every layer, the head and sampling) in one call.
See cpu_backend.py for the design.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from wavenet_core.generation.cpu_simd import (
    _HALF,
    _JIT,
    _ZERO,
    LANES,
    PANEL,
    ROWS,
    SUB_STEPS,
    _aligned_zeros,
    _sample,
    _tanh,
    _vfma,
    _vload,
    _vsplat,
    _vstore,
    counter_uniform_one,
)

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
