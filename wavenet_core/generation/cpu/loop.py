"""`run_rows`: K samples for a group of slots in one compiled call (every layer, the head
and sampling), by one thread alone or by a team of threads that split every matrix by
output column. See cpu/backend.py and docs/cpu-kernel.md for the design.

A team of T threads all run this function on the same slots, each with its own Shard.
Per layer: every thread reads the k-1 ring taps and writes the layer input to its ring
(over the oldest tap: thread 0 to the state's, the others to private copies, so no ring
row crosses cores), then computes its filter/gate columns -> its slice of z, written to
the team's shared z; barrier; every thread computes the whole residual (it needs all of
z; the residual matrix is small, so computing it twice is cheaper than a second barrier)
and its own skip columns, from [x | skip] (+ the out bias), then scales x.
The head: skip slices -> shared act; barrier; head columns -> shared hid; barrier; logit
columns -> shared lg; barrier; every thread samples the same code (or scalar sample)
from the same outputs. Options the model does not use (out bias, residual scale 1, scalar
input and output, an excitation output) cost one branch per layer or per step, outside
the inner loops. An excitation model (docs/excitation.md) feeds back samples: each step
shifts the row's sample into its LPC history, predicts p from the step's coefficient row,
feeds embedding[code of x] + p * pred_w, and makes x = clamp(p + e) from the sampled code.
Voicing-shaped sampling (generation/shaping.py) reads each step's (temperature, floor)
from the call's rows instead of the slot's temperature.
Each output element is the same FMA chain whatever the team size, so a team's samples
are bitwise one thread's. With T = 1 the barriers return at once.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from wavenet_core.generation.cpu.dot import group_of
from wavenet_core.generation.cpu.excitation import (
    excitation_value,
    mulaw_code,
    push_and_predict,
)
from wavenet_core.generation.cpu.kernels import _matmul, scratch_words
from wavenet_core.generation.cpu.sampler import sample_row, sampler_words
from wavenet_core.generation.cpu.scalar import pcm_code, sample_scalar_one
from wavenet_core.generation.cpu.simd import (
    _JIT,
    _ONE,
    _ZERO,
    LANES,
    PREFETCH_LAYERS,
    SUB_STEPS,
    _aligned_zeros,
    _gated,
    _prefetch,
    _ring_at,
    counter_uniform_one,
)
from wavenet_core.generation.cpu.sync import barrier


@njit(**_JIT)
def run_rows(dims, shard, call, team):
    """Run `call.num_steps` steps for `call.slots` as thread `team.thread` of the team."""
    slots = call.slots
    n = slots.shape[0]
    num_steps = call.num_steps
    num_layers = dims.dilations.shape[0]
    c, cp, zp, sp, qp, m, nout = dims.c, dims.cp, dims.zp, dims.sp, dims.qp, dims.m, dims.nout
    taps = dims.taps
    kcp = taps * cp                     # gate input: k taps of cp, oldest first
    jt = shard.jt
    jt2 = 2 * jt
    xw = cp + shard.st                  # per row: residual stream x [cp], my skip slice
    scalar = dims.in_w.shape[0] > 0
    order = dims.order                  # an excitation model's LPC order (0: none)
    teacher = call.forced.shape[1] > 0 or call.forced_v.shape[1] > 0
    keep_logits = call.logits.shape[1] > 0
    shaped = call.shaping.shape[1] > 0   # per-sample (temperature, floor) rows
    has_out_b = shard.out_b.shape[0] > 0
    scale = dims.scale
    lead = team.thread == 0
    res_all = team.res_all              # > 0: the team splits the residual (see Team)
    res_lo, res_hi = (team.res_lo, team.res_hi) if res_all > 0 else (0, 0)
    zwords = zp // group_of(shard.w)    # weight words per out column (panels as for fp32)
    no_scales = shard.s[:0]

    xs = _aligned_zeros(n * xw)
    gin = _aligned_zeros(n * kcp)       # per row: [x(t-(k-1)d), ..., x(t-d), x(t)]
    h = _aligned_zeros(n * jt2)         # per row: my filter, gate pre-activations
    # the dot formats' packed matrix inputs (cpu/dot.py), per row
    packed = _aligned_zeros(n * scratch_words(max(kcp, zp, dims.sp)))
    probs = np.zeros(sampler_words(nout), np.float32)    # the sampler's scratch
    pos = np.zeros(n, np.int64)
    code = np.zeros(n, np.int64)
    value = np.zeros(n, np.float32)
    phase = np.zeros(n * num_layers, np.int64)      # pos % span, kept incrementally
    history = np.zeros((n, order), np.float32)      # each row's LPC history, newest first
    pred = np.zeros(n, np.float32)                  # each row's prediction this step
    scratch = np.zeros(max(1, 2 * order), np.float32)
    size = 1
    while size < order:
        size *= 2
    scratch = scratch[:size]
    for r in range(n):
        pos[r] = call.positions[slots[r]]
        code[r] = call.next_input[slots[r]]
        value[r] = call.next_value[slots[r]]
        for j in range(order):
            history[r, j] = call.lpc_history[slots[r], j]
        for layer in range(num_layers):
            phase[r * num_layers + layer] = pos[r] % dims.spans[layer]
    # Mel: per block of `sub` steps, each row's frames that block touches are projected
    # (bias included) into proj [n, L, nfb, 2jt]; each step interpolates its two frames'
    # projections into hinit, the gate's start. Projection and interpolation commute, so a
    # frame costs one projection, not hop of them; rows of hop 1 interpolate with weight
    # 0, which gives the projection itself exactly.
    hop = call.hop
    sub = min(max(SUB_STEPS, 2 * hop), num_steps) if m > 0 else num_steps
    nfb = (hop - 1 + sub - 1) // hop + 2 if m > 0 else 0
    num_frames = call.frames.shape[0] // (n * m) if m > 0 else 0
    proj = _aligned_zeros(n * num_layers * nfb * jt2)
    hinit = _aligned_zeros(n * jt2)
    first_frame = np.zeros(n, np.int64)
    frame_at = np.zeros(n, np.int64)
    weight_at = np.zeros(n, np.float32)
    generation = 0                                   # barriers passed
    zb = 0                                           # which half of team.z this layer uses

    for k0 in range(0, num_steps, sub):
        kn = min(sub, num_steps - k0)
        if m > 0 and jt2 > 0:
            for r in range(n):
                u0 = call.phase[r] + k0
                first_frame[r] = u0 // hop
                nf = (u0 + kn - 1) // hop + 2 - first_frame[r]
                for layer in range(num_layers):
                    _matmul(shard.local_p, no_scales, layer * m * jt2, 0, m, jt2, call.frames,
                            (r * num_frames + first_frame[r]) * m, m,
                            call.bias, (r * num_layers + layer) * jt2, 0,
                            proj, (r * num_layers + layer) * nfb * jt2, jt2, nf, packed)
        for kk in range(kn):
            k = k0 + kk
            for r in range(n):
                if m > 0:
                    u = call.phase[r] + k
                    frame_at[r] = u // hop - first_frame[r]
                    weight_at[r] = np.float32((u % hop) / hop)
                xr = xs[r * xw:(r + 1) * xw]
                if scalar:
                    if teacher:
                        value[r] = call.forced_v[r, k]
                    v = value[r]
                    iw = dims.in_w[0]
                    ib = dims.in_w[1]
                    for o in range(c):
                        xr[o] = v * iw[o] + ib[o]
                elif order > 0:             # excitation: x's code, plus p * pred_w
                    if teacher:
                        value[r] = call.forced_v[r, k]
                    pred[r] = push_and_predict(history[r], value[r], call.lpc[r, k], scratch)
                    e = dims.emb[mulaw_code(value[r], dims.thresholds)]
                    pw = dims.pred_w
                    p = pred[r]
                    for o in range(c):
                        xr[o] = e[o] + p * pw[o]
                else:
                    if teacher:
                        code[r] = call.forced[r, k]
                    e = dims.emb[code[r]]
                    for o in range(c):
                        xr[o] = e[o]
                xr[c:] = _ZERO
            for layer in range(num_layers):
                d = dims.dilations[layer]
                span = dims.spans[layer]
                # Prefetch the taps of the layer PREFETCH_LAYERS ahead: this step's, or a
                # later step's (at phase + steps_on) near a step's end or in a model of few
                # layers. A tap was written d steps ago and has left the nearer caches;
                # fetching it while this layer's matrices run hides part of that wait.
                ahead = (layer + PREFETCH_LAYERS) % num_layers
                steps_on = (layer + PREFETCH_LAYERS) // num_layers
                for r in range(n):
                    ph = phase[r * num_layers + ahead] + steps_on
                    for j in range(taps - 1):
                        at = _ring_at(ph + j * dims.dilations[ahead], dims.spans[ahead])
                        q = call.ring[call.ring_rows[r], dims.offsets[ahead] + at]
                        for o in range(0, c, LANES):     # every 64-byte line of the row
                            _prefetch(q, o)
                for r in range(n):
                    ph = phase[r * num_layers + layer]
                    for j in range(taps - 1):       # tap j: x(t - (k-1-j) d), at ph + j d
                        q = call.ring[call.ring_rows[r],
                                      dims.offsets[layer] + _ring_at(ph + j * d, span)]
                        prev = gin[r * kcp + j * cp:r * kcp + j * cp + c]
                        for o in range(c):
                            prev[o] = q[o]
                    cur = gin[r * kcp + kcp - cp:r * kcp + kcp - cp + c]
                    xr = xs[r * xw:r * xw + c]
                    # the layer input replaces the oldest tap, now copied, while its line
                    # is in L1 (after the gate's matrix it was not: 5-7% of a batch-16
                    # step); every thread writes the ring it reads (thread 0 the state's,
                    # the others private copies), so no other thread can see it early
                    q = call.ring[call.ring_rows[r], dims.offsets[layer] + ph]
                    for o in range(c):
                        cur[o] = xr[o]
                        q[o] = xr[o]
                if jt2 > 0:
                    if m > 0:
                        for r in range(n):
                            w1 = weight_at[r]
                            w0 = _ONE - w1
                            at = ((r * num_layers + layer) * nfb + frame_at[r]) * jt2
                            pa = proj[at:at + jt2]
                            pb = proj[at + jt2:at + 2 * jt2]
                            hr = hinit[r * jt2:(r + 1) * jt2]
                            for o in range(jt2):
                                hr[o] = pa[o] * w0 + pb[o] * w1
                        _matmul(shard.w, shard.s, shard.gate_off[layer], shard.gate_soff[layer],
                                kcp, jt2, gin, 0, kcp, hinit, 0, jt2, h, 0, jt2, n, packed)
                    else:
                        _matmul(shard.w, shard.s, shard.gate_off[layer], shard.gate_soff[layer],
                                kcp, jt2, gin, 0, kcp, call.bias, layer * jt2,
                                num_layers * jt2, h, 0, jt2, n, packed)
                    for r in range(n):
                        hf = h[r * jt2:r * jt2 + jt]
                        hg = h[r * jt2 + jt:(r + 1) * jt2]
                        zr = team.z[(zb * n + r) * zp + shard.j_lo:]
                        for o in range(jt):
                            zr[o] = _gated(hf[o], hg[o])
                generation += 1
                barrier(team.flags, team.thread, team.threads, generation)
                if has_out_b:
                    ob = shard.out_b[layer * xw:(layer + 1) * xw]
                    for r in range(n):
                        xr = xs[r * xw:(r + 1) * xw]
                        for o in range(xw):
                            xr[o] = xr[o] + ob[o]
                if res_all > 0:          # my residual panels, then [res_all, cp) and skip
                    _matmul(shard.w, shard.s, shard.out_off[layer] + res_lo * zwords,
                            shard.out_soff[layer] + res_lo, zp, res_hi - res_lo,
                            team.z, zb * n * zp, zp, xs, res_lo, xw, xs, res_lo, xw, n, packed)
                _matmul(shard.w, shard.s, shard.out_off[layer] + res_all * zwords,
                        shard.out_soff[layer] + res_all, zp, xw - res_all,
                        team.z, zb * n * zp, zp, xs, res_all, xw, xs, res_all, xw, n, packed)
                if scale != _ONE:
                    for r in range(n):
                        xr = xs[r * xw:r * xw + c]
                        for o in range(res_lo, min(res_hi, c)):
                            xr[o] = xr[o] * scale
                        for o in range(res_all, c):
                            xr[o] = xr[o] * scale
                if res_all > 0:          # share my residual columns, take the others'
                    for r in range(n):
                        xr = xs[r * xw:r * xw + res_all]
                        tx = team.x[r * cp:r * cp + res_all]
                        for o in range(res_lo, res_hi):
                            tx[o] = xr[o]
                    generation += 1
                    barrier(team.flags, team.thread, team.threads, generation)
                    for r in range(n):
                        xr = xs[r * xw:r * xw + res_all]
                        tx = team.x[r * cp:r * cp + res_all]
                        for o in range(res_all):
                            xr[o] = tx[o]
                zb = 1 - zb
            for r in range(n):
                skip = xs[r * xw + cp:(r + 1) * xw]
                ar = team.act[r * sp + shard.s_lo:]
                for o in range(shard.st):
                    ar[o] = max(skip[o], _ZERO)
            generation += 1
            barrier(team.flags, team.thread, team.threads, generation)
            if shard.ht > 0:
                _matmul(shard.w, shard.s, shard.head_off, shard.head_soff, sp, shard.ht,
                        team.act, 0, sp, shard.head_b, 0, 0, team.hid, shard.h_lo, sp, n, packed)
                for r in range(n):
                    hr = team.hid[r * sp + shard.h_lo:]
                    for o in range(shard.ht):
                        hr[o] = max(hr[o], _ZERO)
            generation += 1
            barrier(team.flags, team.thread, team.threads, generation)
            if shard.qt > 0:
                _matmul(shard.w, shard.s, shard.logit_off, shard.logit_soff, sp, shard.qt,
                        team.hid, 0, sp, shard.logit_b, 0, 0, team.lg, shard.q_lo, qp, n, packed)
            generation += 1
            barrier(team.flags, team.thread, team.threads, generation)
            for r in range(n):
                slot = slots[r]
                for layer in range(num_layers):
                    j = r * num_layers + layer
                    phase[j] = 0 if phase[j] + 1 == dims.spans[layer] else phase[j] + 1
                lr = team.lg[r * qp:r * qp + nout]
                if lead and keep_logits:
                    out = call.logits[r, k]
                    for o in range(nout):
                        out[o] = lr[o]
                if not teacher and scalar:
                    value[r] = sample_scalar_one(lr, dims.out_kind, dims.mixtures, dims.lsm,
                                                 call.temperature[slot], call.seed[slot],
                                                 pos[r])
                    if lead:
                        call.codes[r, k] = pcm_code(value[r])
                elif not teacher:
                    temperature, floor = call.temperature[slot], _ZERO
                    if shaped:
                        temperature, floor = call.shaping[r, k, 0], call.shaping[r, k, 1]
                    drawn = sample_row(lr, temperature, floor,
                                       counter_uniform_one(call.seed[slot], pos[r]), probs)
                    if order > 0:
                        value[r] = excitation_value(pred[r], drawn, dims.table)
                        if lead:
                            call.codes[r, k] = pcm_code(value[r])
                    else:
                        code[r] = drawn
                        if lead:
                            call.codes[r, k] = code[r]
                pos[r] += 1
    if lead:
        for r in range(n):
            call.positions[slots[r]] = pos[r]
            for j in range(order):
                call.lpc_history[slots[r], j] = history[r, j]
            if not teacher:
                call.next_input[slots[r]] = code[r]
                call.next_value[slots[r]] = value[r]
