"""The persistent Triton kernel of the `triton` backend: one launch makes K samples.

Program p serves call rows p*BB .. p*BB+BB-1 (BB slots, padded rows masked) and loops,
with no communication between programs, over the K samples of the chunk and, inside, over
the layers. Per layer: read x(t-d) from the GenerationState's ring, write x(t) there
(a barrier between the two: the same address may belong to different threads), filter
and gate as four small dots on x(t-d) and x(t) plus the slot's bias (gate bias with the
speaker folded in, plus the mel projection interpolated between two frames), tanh *
sigmoid, residual and skip dots. Then the head and, unless teacher-forced, the sampling
with the counter-based RNG of `sampling.py` (same integer operations, bitwise the same
uniforms), whose code feeds the next sample.

Every weight is stored transposed ([in, out]), padded to powers of two >= 16 (tl.dot's
minimum), in float32 (dots with input_precision="ieee", no TF32) or float16 (activations
rounded to float16 at each dot's input, float32 accumulation); the ring, the residual
stream, biases and the skip sum stay float32.

The function is plain Python: the backend wraps it in `triton.jit` on CUDA or in the
Triton interpreter on the CPU (tests), so nothing here may call another jitted function;
tanh is 2*sigmoid(2x)-1 (no libdevice, which the interpreter lacks). Only features present
in Triton 3.6 and 3.7 are used.
"""

from __future__ import annotations

import triton.language as tl


def wavenet_chunk(ring_ptr, pos_ptr, next_ptr, seed_ptr, temp_ptr,
                  slots_ptr, n, num_steps, bias_ptr, forced_ptr, codes_ptr, logits_ptr,
                  proj_ptr, phase_ptr, hop, num_frames,
                  dil_ptr, off_ptr, emb_ptr, wfp_ptr, wfn_ptr, wgp_ptr, wgn_ptr,
                  wres_ptr, wskip_ptr, wh_ptr, bh_ptr, wl_ptr, bl_ptr,
                  ring_len, num_layers,
                  C: tl.constexpr, Q: tl.constexpr, CP: tl.constexpr, SP: tl.constexpr,
                  QP: tl.constexpr, TN: tl.constexpr, BB: tl.constexpr, TEACHER: tl.constexpr,
                  LOCAL: tl.constexpr, PRECISION: tl.constexpr):
    rows = tl.program_id(0) * BB + tl.arange(0, BB)
    live = rows < n
    cc = tl.arange(0, CP)
    sc = tl.arange(0, SP)
    qc = tl.arange(0, QP)
    ring_mask = live[:, None] & (cc < C)[None, :]
    slot = tl.load(slots_ptr + rows, mask=live, other=0)
    pos = tl.load(pos_ptr + slot, mask=live, other=0)
    code = tl.load(next_ptr + slot, mask=live, other=0).to(tl.int32)
    seed = tl.load(seed_ptr + slot, mask=live, other=0).to(tl.uint32)
    temp = tl.load(temp_ptr + slot, mask=live, other=0.0)
    sampled = temp > 0.0
    safe_temp = tl.where(sampled, temp, 1.0)
    wdt = wfp_ptr.dtype.element_ty
    square = cc[:, None] * CP + cc[None, :]               # a [CP, CP] matrix
    to_skip = cc[:, None] * SP + sc[None, :]              # a [CP, SP] matrix
    tn = tl.arange(0, TN)
    if LOCAL:
        phase = tl.load(phase_ptr + rows, mask=live, other=0)
    for k in range(num_steps):
        if TEACHER:
            code = tl.load(forced_ptr + rows * num_steps + k, mask=live, other=0).to(tl.int32)
        x = tl.load(emb_ptr + code[:, None] * CP + cc[None, :])
        skip = tl.zeros([BB, SP], dtype=tl.float32)
        if LOCAL:
            u = phase + k
            frame = u // hop
            weight = ((u - frame * hop).to(tl.float32) / hop)[:, None]
            frame_row = (rows * num_frames + frame) * num_layers
        for layer in range(num_layers):
            dilation = tl.load(dil_ptr + layer)
            cell = slot * ring_len + tl.load(off_ptr + layer) + pos % dilation
            at = ring_ptr + cell[:, None] * C + cc[None, :]
            previous = tl.load(at, mask=ring_mask, other=0.0)
            tl.debug_barrier()
            tl.store(at, x, mask=ring_mask)
            b_at = bias_ptr + (rows * num_layers + layer)[:, None] * (2 * CP) + cc[None, :]
            bf = tl.load(b_at, mask=live[:, None], other=0.0)
            bg = tl.load(b_at + CP, mask=live[:, None], other=0.0)
            if LOCAL:
                p_at = proj_ptr + (frame_row + layer)[:, None] * (2 * CP) + cc[None, :]
                p_next = p_at + num_layers * 2 * CP
                pm = live[:, None]
                bf += (tl.load(p_at, mask=pm, other=0.0) * (1.0 - weight)
                       + tl.load(p_next, mask=pm, other=0.0) * weight)
                bg += (tl.load(p_at + CP, mask=pm, other=0.0) * (1.0 - weight)
                       + tl.load(p_next + CP, mask=pm, other=0.0) * weight)
            w_at = layer * CP * CP + square
            past = previous.to(wdt)
            now = x.to(wdt)
            hf = bf + tl.dot(past, tl.load(wfp_ptr + w_at), input_precision=PRECISION)
            hf = hf + tl.dot(now, tl.load(wfn_ptr + w_at), input_precision=PRECISION)
            hg = bg + tl.dot(past, tl.load(wgp_ptr + w_at), input_precision=PRECISION)
            hg = hg + tl.dot(now, tl.load(wgn_ptr + w_at), input_precision=PRECISION)
            z = ((2.0 * tl.sigmoid(2.0 * hf) - 1.0) * tl.sigmoid(hg)).to(wdt)
            x = x + tl.dot(z, tl.load(wres_ptr + w_at), input_precision=PRECISION)
            skip = skip + tl.dot(z, tl.load(wskip_ptr + layer * CP * SP + to_skip),
                                 input_precision=PRECISION)
        # head, in column tiles of TN hidden units (a whole [S, S] operand may not fit
        # in shared memory): logits = bl + sum_j relu(relu(skip) wh[:, j] + bh[j]) wl[j]
        skip = tl.maximum(skip, 0.0).to(wdt)
        logits = tl.zeros([BB, QP], dtype=tl.float32) + tl.load(bl_ptr + qc)[None, :]
        for j in range(0, SP, TN):
            hidden = tl.dot(skip, tl.load(wh_ptr + sc[:, None] * SP + (j + tn)[None, :]),
                            input_precision=PRECISION) + tl.load(bh_ptr + j + tn)[None, :]
            hidden = tl.maximum(hidden, 0.0).to(wdt)
            logits += tl.dot(hidden, tl.load(wl_ptr + (j + tn)[:, None] * QP + qc[None, :]),
                             input_precision=PRECISION)
        if TEACHER:
            out = logits_ptr + (rows * num_steps + k)[:, None] * Q + qc[None, :]
            tl.store(out, logits, mask=live[:, None] & (qc < Q)[None, :])
        else:
            # counter_uniform(seed, pos): lowbias32(lowbias32(seed ^ salt) ^ pos)
            h = seed ^ 0x9E3779B9
            h = h ^ (h >> 16)
            h = h * 0x7FEB352D
            h = h ^ (h >> 15)
            h = h * 0x846CA68B
            h = (h ^ (h >> 16)) ^ pos.to(tl.uint32)
            h = h ^ (h >> 16)
            h = h * 0x7FEB352D
            h = h ^ (h >> 15)
            h = h * 0x846CA68B
            h = h ^ (h >> 16)
            uniform = (h >> 8).to(tl.float32) * (1.0 / 16777216.0)
            # sample_codes: inverse CDF of softmax(logits / T), greedy at T = 0
            scaled = logits / safe_temp[:, None]
            probs = tl.exp(scaled - tl.max(scaled, axis=1)[:, None])
            cdf = tl.cumsum(probs, axis=1)
            target = uniform * tl.max(cdf, axis=1)
            drawn = tl.sum((cdf <= target[:, None]).to(tl.int32), axis=1)
            drawn = tl.minimum(drawn, Q - 1)
            greedy = tl.argmax(logits, axis=1).to(tl.int32)
            code = tl.where(sampled, drawn, greedy)
            tl.store(codes_ptr + rows * num_steps + k, code.to(tl.int64), mask=live)
        pos += 1
    tl.store(pos_ptr + slot, pos, mask=live)
    if not TEACHER:
        tl.store(next_ptr + slot, code.to(tl.int64), mask=live)
