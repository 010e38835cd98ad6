"""The persistent Triton kernel of the `triton` backend: one launch makes K samples.

Program p serves call rows p*BB .. p*BB+BB-1 (BB slots, padded rows masked) and loops,
with no communication between programs, over the K samples of the chunk and, inside, over
the layers. Per layer: read the oldest tap x(t-(k-1)d) from the GenerationState's ring,
to be replaced by x(t) (the same address may belong to different threads, so a barrier
lies between that read and that write: with LAYER_STAGES = 1 inside the layer loop; with
LAYER_STAGES > 1 x(t) waits in the program's stage row and a loop after the layer loop
writes every layer's, so the layer loop holds no barrier and Triton pipelines it, copying
the next layer's weights, bias rows and oldest tap to shared memory while this layer
computes), filter and gate as small dots per tap (k-1 past taps and x(t); in fp16, FUSED,
one dot per tap with filter and gate columns interleaved, else two) plus the
slot's bias (gate bias with the speaker folded in, plus the mel projection interpolated
between two frames), tanh * sigmoid, residual and skip dots (+ their biases, * the
residual scale). Then the head and, unless teacher-forced, the sampling with the
counter-based RNG of `sampling.py` (same integer operations, bitwise the same uniforms):
a softmax code, or a mixture / Gaussian sample in [-1, 1], which feeds the next sample.
An excitation model (EXCITE, docs/excitation.md) feeds back samples: the LPC history lives
in the state (read, shifted and written back each step, like the ring), and the sampled
excitation code e makes x = clamp(p + e).
Voicing-shaped sampling (SHAPED, generation/shaping.py) reads each step's (temperature,
floor) from the call's rows instead of the slot's temperature, and zeroes the
probabilities below floor x their total before the draw.
The version-2 options (docs/architecture.md section 7) are constexpr switches, so the
seed's design (k = 2, no biases, scale 1, softmax) compiles to no work for options it lacks.

Channel blocks (shape.kernel_shape): fp32 always, and a model wider than one weight
tile per dot allows (shape.TILE_BYTES, e.g. r9y9's 512-channel LJSpeech preset),
run the dots over channel blocks: the gate's over CB input channels at a time, the
residual and skip dots over GB z channels, the head's first dot over HB skip channels
(constexprs; CB = CP, GB = GP, HB = SP is the one-block kernel, unchanged). Registers
cannot be sliced, so the blocked dots read their operands from memory: the past taps from
the ring (x(t) is written over the oldest one after the gate), x(t), z and relu(skip) from
the program's rows of three scratch buffers (xs, zs, ss; xs also holds the pipelined layer
loop's stage rows, one per layer). Each block loop is a
`tl.range(..., num_stages=STAGES)` (shape.block_stages: 3, 2 for wide models): the
compiler copies the next blocks' operands to shared memory (async copies) while this
one's dot runs. WIDE (models wider than shape.WIDE residual channels): x and the skip
sum live in the scratch rows (xs, ss) between the block loops instead of registers, and
the mel projection is added after the gate dots, so that none of them is held through a
block loop (issue 30: what spilled at r9y9's width, docs/triton-kernel.md "Wide models").
WIDE also holds no per-row value through the sample loop: each sample reloads its slots
and positions, each layer its phase after the gate dots, the draw its seed and temperature
(DRAW_LOADS, also config A fp32), and x(t) goes into the ring 16 channels at a time (in a
[16, C] tile a thread holds 8 rows, whose 64-bit ring addresses spilled). Compiled (ASM),
the head and the draw index their rows from `rows + zero`, zero an opaque 0 (inline PTX:
LLVM cannot hoist what depends on it, ptxas folds it), so their addresses are computed
after the layer loop instead of before the sample loop and held through it.

Ring columns: the host passes RING_LCM, the least common multiple of the ring lengths
(0 when it exceeds 2**30); the kernel takes head = pos % RING_LCM once per sample, then
each layer's column head % span in int32 (head & (span - 1) when RING_LCM is a power of
two), the younger taps' columns wrapping once at most.

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
                  dil_ptr, off_ptr, emb_ptr, wf_ptr, wg_ptr, wres_ptr, wskip_ptr,
                  bres_ptr, bskip_ptr, wh_ptr, bh_ptr, wl_ptr, bl_ptr,
                  ring_len, num_layers, residual_scale, log_scale_min,
                  lpc_ptr, hist_ptr, pw_ptr, thr_ptr, tab_ptr, shape_ptr, xs_ptr, zs_ptr,
                  ss_ptr,
                  C: tl.constexpr, Q: tl.constexpr, CP: tl.constexpr, GP: tl.constexpr,
                  SP: tl.constexpr, QP: tl.constexpr, TN: tl.constexpr, BB: tl.constexpr,
                  KS: tl.constexpr, TEACHER: tl.constexpr, LOCAL: tl.constexpr,
                  OUT_BIAS: tl.constexpr, SCALED: tl.constexpr, SCALAR: tl.constexpr,
                  MIXTURES: tl.constexpr, DRAWS: tl.constexpr, PRECISION: tl.constexpr,
                  EXCITE: tl.constexpr, VALUES: tl.constexpr, ORDER: tl.constexpr,
                  OP: tl.constexpr, LOG_OP: tl.constexpr, TP: tl.constexpr,
                  SHAPED: tl.constexpr, CB: tl.constexpr, GB: tl.constexpr,
                  HB: tl.constexpr, RING_LCM: tl.constexpr, STAGES: tl.constexpr,
                  WIDE: tl.constexpr, LAYER_STAGES: tl.constexpr, FUSED: tl.constexpr,
                  ASM: tl.constexpr, DRAW_LOADS: tl.constexpr):
    rows = tl.program_id(0) * BB + tl.arange(0, BB)
    if WIDE:    # the scratch rows addressed from the program's base (fewer row addresses)
        own = tl.arange(0, BB)
        xs_ptr += tl.program_id(0) * (BB * CP)
        zs_ptr += tl.program_id(0) * (BB * GP)
        ss_ptr += tl.program_id(0) * (BB * SP)
    else:
        own = rows
    live = rows < n
    cc = tl.arange(0, CP)
    gc = tl.arange(0, GP)
    sc = tl.arange(0, SP)
    qc = tl.arange(0, QP)
    ring_mask = live[:, None] & (cc < C)[None, :]
    slot = tl.load(slots_ptr + rows, mask=live, other=0)
    pos = tl.load(pos_ptr + slot, mask=live, other=0)
    if VALUES:
        value = tl.load(next_ptr + slot, mask=live, other=0.0)
    else:
        code = tl.load(next_ptr + slot, mask=live, other=0).to(tl.int32)
    if EXCITE:
        oc = tl.arange(0, OP)
        hist_mask = live[:, None] & (oc < ORDER)[None, :]
        shift_mask = hist_mask & (oc >= 1)[None, :]
        hist_at = hist_ptr + slot[:, None] * ORDER + oc[None, :]
        thresholds = tl.load(thr_ptr + tl.arange(0, TP))     # padded with +inf
        pw = tl.load(pw_ptr + cc)
    if not DRAW_LOADS:
        seed = tl.load(seed_ptr + slot, mask=live, other=0).to(tl.uint32)
        temp = tl.load(temp_ptr + slot, mask=live, other=0.0)
        sampled = temp > 0.0
        safe_temp = tl.where(sampled, temp, 1.0)
    wdt = wf_ptr.dtype.element_ty
    to_gate = cc[:, None] * GP + gc[None, :]              # a [CP, GP] matrix
    to_both = cc[:, None] * (2 * GP) + tl.arange(0, 2 * GP)[None, :]    # [CP, 2 GP]
    to_res = gc[:, None] * CP + cc[None, :]               # a [GP, CP] matrix
    to_skip = gc[:, None] * SP + sc[None, :]              # a [GP, SP] matrix
    tn = tl.arange(0, TN)
    if LOCAL and not WIDE:
        phase = tl.load(phase_ptr + rows, mask=live, other=0).to(tl.int32)   # < hop
    for k in range(num_steps):
        if SCALAR:
            if TEACHER:
                value = tl.load(forced_ptr + rows * num_steps + k, mask=live, other=0.0)
            x = (value[:, None] * tl.load(emb_ptr + cc)[None, :]
                 + tl.load(emb_ptr + CP + cc)[None, :])
        elif EXCITE:
            # the sample fed back enters the LPC history (newest first), predicts p with
            # the step's coefficient row, and its mu-law code (count of thresholds <= x)
            # picks the embedding row, plus p * pw
            if TEACHER:
                value = tl.load(forced_ptr + rows * num_steps + k, mask=live, other=0.0)
            older = tl.load(hist_at - 1, mask=shift_mask, other=0.0)
            history = tl.where((oc == 0)[None, :], value[:, None], older)
            tl.debug_barrier()
            tl.store(hist_at, history, mask=hist_mask)
            coefs = tl.load(lpc_ptr + (rows * num_steps + k)[:, None] * ORDER + oc[None, :],
                            mask=hist_mask, other=0.0)
            # p = -(sum of the products) in lpc.tree_sum's order: the first half plus the
            # second, halving until one is left (the torch and cpu backends' bits)
            prod = history * coefs
            for level in tl.static_range(LOG_OP):
                prod = tl.sum(tl.reshape(prod, [BB, 2, OP >> (level + 1)]), axis=1)
            pred = -tl.reshape(prod, [BB])
            code = tl.sum((thresholds[None, :] <= value[:, None]).to(tl.int32), axis=1)
            x = tl.load(emb_ptr + code[:, None] * CP + cc[None, :]) + pred[:, None] * pw[None, :]
        else:
            if TEACHER:
                code = tl.load(forced_ptr + rows * num_steps + k, mask=live,
                               other=0).to(tl.int32)
            x = tl.load(emb_ptr + code[:, None] * CP + cc[None, :])
        skip = tl.zeros([BB, SP], dtype=tl.float32)
        if WIDE:        # the skip sum in the scratch (ss), not held through the layers
            tl.debug_barrier()          # every thread has read the last sample's
            tl.store(ss_ptr + own[:, None] * SP + sc[None, :], skip)
        if WIDE:    # reloaded each sample: per-row values held through the loop spilled
            slot_k = tl.load(slots_ptr + rows, mask=live, other=0)
            pos_k = tl.load(pos_ptr + slot_k, mask=live, other=0) + k
        else:
            slot_k = slot
            pos_k = pos
            if LOCAL:
                u = phase + k
        if RING_LCM > 0:        # every ring length divides RING_LCM: int32 ring columns
            head = (pos_k % RING_LCM).to(tl.int32)
        else:
            head = pos_k
        for layer in tl.range(0, num_layers, num_stages=LAYER_STAGES):
            # taps oldest first: x(t - j d) for j = KS-1 .. 1 sits at column
            # (pos + (KS-1-j) d) % span of the layer's ring, the oldest where x(t) goes;
            # pos % span = head % span, and the younger ones wrap once at most
            dilation = tl.load(dil_ptr + layer)
            span = (KS - 1) * dilation
            base = slot_k * ring_len + tl.load(off_ptr + layer)
            if RING_LCM > 0 and (RING_LCM & (RING_LCM - 1)) == 0:   # so is span: a mask
                col = head & (span - 1)
            else:
                col = head % span
            at = ring_ptr + (base + col)[:, None] * C + cc[None, :]
            if CB == CP:
                previous = tl.load(at, mask=ring_mask, other=0.0)
                if LAYER_STAGES == 1:
                    tl.debug_barrier()
                    tl.store(at, x, mask=ring_mask)
                else:
                    # x(t) in the program's stage row, written over the oldest tap after
                    # the layer loop (a barrier inside the loop stops Triton pipelining it)
                    tl.store(xs_ptr + ((own * num_layers + layer) * CP)[:, None]
                             + cc[None, :], x)
            b_at = bias_ptr + (rows * num_layers + layer)[:, None] * (2 * GP) + gc[None, :]
            hf = tl.load(b_at, mask=live[:, None], other=0.0)
            hg = tl.load(b_at + GP, mask=live[:, None], other=0.0)
            if CB == CP:
                # every tap, oldest first, x(t) last. FUSED (fp16): one dot per tap, wf
                # holding [KS, CP, 2 GP] per layer with filter and gate columns
                # interleaved, the accumulator interleaving hf and hg the same way
                # ((bias + tap 0) + tap 1 ... per column, as two dots per tap sum it);
                # else (fp32: twice the FMA dot's registers spilled) wf, wg [KS, CP, GP]
                past = previous.to(wdt)
                now = x.to(wdt)
                if FUSED:
                    h = tl.reshape(tl.join(hf, hg), [BB, 2 * GP])
                    w_at = layer * KS * CP * 2 * GP + to_both
                else:
                    w_at = layer * KS * CP * GP + to_gate
                for j in tl.static_range(KS):
                    if j == 0:
                        tap = past
                    elif j == KS - 1:
                        tap = now
                    else:                               # the younger past taps (KS > 2)
                        cj = col + j * dilation
                        cj = tl.where(cj < span, cj, cj - span)
                        tap_at = ring_ptr + (base + cj)[:, None] * C + cc[None, :]
                        tap = tl.load(tap_at, mask=ring_mask, other=0.0).to(wdt)
                    if FUSED:
                        h = tl.dot(tap, tl.load(wf_ptr + w_at + j * CP * 2 * GP), h,
                                   input_precision=PRECISION)
                    else:
                        hf = hf + tl.dot(tap, tl.load(wf_ptr + w_at + j * CP * GP),
                                         input_precision=PRECISION)
                        hg = hg + tl.dot(tap, tl.load(wg_ptr + w_at + j * CP * GP),
                                         input_precision=PRECISION)
                if FUSED:
                    hf, hg = tl.split(tl.reshape(h, [BB, GP, 2]))
            else:
                # CB input channels at a time, every tap (oldest first, x(t) last); x(t)
                # from the scratch, then written over the oldest tap once all have read it
                if WIDE:
                    tl.debug_barrier()  # every thread has read the last layer's x
                tl.store(xs_ptr + own[:, None] * CP + cc[None, :], x)
                tl.debug_barrier()
                cb = tl.arange(0, CB)
                w_at = layer * KS * CP * GP
                for i in tl.range(0, KS * (CP // CB), num_stages=STAGES):
                    c0 = (i // KS) * CB
                    j = i % KS
                    in_block = live[:, None] & ((c0 + cb) < C)[None, :]
                    cj = col + j * dilation
                    cj = tl.where(cj < span, cj, cj - span)
                    tap_at = tl.where(j < KS - 1, ring_ptr + (base + cj)[:, None] * C,
                                      xs_ptr + own[:, None] * CP)
                    tap = tl.load(tap_at + (c0 + cb)[None, :], mask=in_block, other=0.0)
                    w_blk = w_at + (j * CP + c0 + cb)[:, None] * GP + gc[None, :]
                    hf = hf + tl.dot(tap.to(wdt), tl.load(wf_ptr + w_blk),
                                     input_precision=PRECISION)
                    hg = hg + tl.dot(tap.to(wdt), tl.load(wg_ptr + w_blk),
                                     input_precision=PRECISION)
                tl.debug_barrier()
                if WIDE:    # x(t) from the scratch, 16 channels at a time (a [16, C] tile's
                    # layout gives a thread 8 rows: their ring addresses spilled)
                    cw = tl.arange(0, 16)
                    for c0 in range(0, CP, 16):
                        in_block = live[:, None] & ((c0 + cw) < C)[None, :]
                        tl.store(ring_ptr + (base + col)[:, None] * C + (c0 + cw)[None, :],
                                 tl.load(xs_ptr + own[:, None] * CP + (c0 + cw)[None, :]),
                                 mask=in_block)
                else:
                    tl.store(at, x, mask=ring_mask)
            if LOCAL:     # after the dots: loaded beside the block loops, these spilled
                if WIDE:    # the phase reloaded: not held through the block loops
                    u = tl.load(phase_ptr + rows, mask=live, other=0).to(tl.int32) + k
                frame = u // hop
                weight = ((u - frame * hop).to(tl.float32) / hop)[:, None]
                frame_row = (rows * num_frames + frame) * num_layers
                p_at = proj_ptr + (frame_row + layer)[:, None] * (2 * GP) + gc[None, :]
                p_next = p_at + num_layers * 2 * GP
                pm = live[:, None]
                hf += (tl.load(p_at, mask=pm, other=0.0) * (1.0 - weight)
                       + tl.load(p_next, mask=pm, other=0.0) * weight)
                hg += (tl.load(p_at + GP, mask=pm, other=0.0) * (1.0 - weight)
                       + tl.load(p_next + GP, mask=pm, other=0.0) * weight)
            z = ((2.0 * tl.sigmoid(2.0 * hf) - 1.0) * tl.sigmoid(hg)).to(wdt)
            if GB == GP:
                o_res = tl.dot(z, tl.load(wres_ptr + layer * GP * CP + to_res),
                               input_precision=PRECISION)
                o_skip = tl.dot(z, tl.load(wskip_ptr + layer * GP * SP + to_skip),
                                input_precision=PRECISION)
            else:
                # GB z channels at a time, z from the scratch
                tl.debug_barrier()          # every thread has read the last layer's z
                tl.store(zs_ptr + own[:, None] * GP + gc[None, :], z.to(tl.float32))
                tl.debug_barrier()
                gb = tl.arange(0, GB)
                o_res = tl.zeros([BB, CP], dtype=tl.float32)
                o_skip = tl.zeros([BB, SP], dtype=tl.float32)
                for g0 in tl.range(0, GP, GB, num_stages=STAGES):
                    zb = tl.load(zs_ptr + own[:, None] * GP + (g0 + gb)[None, :]).to(wdt)
                    o_res += tl.dot(zb, tl.load(wres_ptr + layer * GP * CP
                                                + (g0 + gb)[:, None] * CP + cc[None, :]),
                                    input_precision=PRECISION)
                    o_skip += tl.dot(zb, tl.load(wskip_ptr + layer * GP * SP
                                                 + (g0 + gb)[:, None] * SP + sc[None, :]),
                                     input_precision=PRECISION)
            if OUT_BIAS:
                o_res += tl.load(bres_ptr + layer * CP + cc)[None, :]
                o_skip += tl.load(bskip_ptr + layer * SP + sc)[None, :]
            if WIDE and CB < CP:    # x from the scratch: not held through the block loops
                x = tl.load(xs_ptr + own[:, None] * CP + cc[None, :]) + o_res
            else:
                x = x + o_res
            if SCALED:
                x = x * residual_scale
            if WIDE:
                ss_at = ss_ptr + own[:, None] * SP + sc[None, :]
                tl.store(ss_at, tl.load(ss_at) + o_skip)
            else:
                skip = skip + o_skip
        # the head and the draw index rows and skip channels from copies made here: WIDE
        # and compiled (ASM), plus an opaque 0 (inline PTX, which LLVM cannot see through
        # and ptxas folds), so that their addresses are computed here, not hoisted before
        # the sample loop and held through the layer loop, where they spilled (the
        # interpreter runs no inline PTX; elsewhere zero is 0 and the copies fold away)
        if WIDE and ASM:
            zero = tl.inline_asm_elementwise("mov.u32 $0, 0;", "=r,r", [k], dtype=tl.int32,
                                             is_pure=False, pack=1)
        else:
            zero = 0
        rows_k = rows + zero
        own_k = own + zero
        sc_k = sc + zero
        live_k = rows_k < n
        # head, in column tiles of TN hidden units (a whole [S, S] operand may not fit
        # in shared memory): logits = bl + sum_j relu(relu(skip) wh[:, j] + bh[j]) wl[j]
        if WIDE:
            tl.debug_barrier()
            skip = tl.load(ss_ptr + own_k[:, None] * SP + sc_k[None, :])
        skip = tl.maximum(skip, 0.0)
        if HB < SP:     # the head's first dots over HB skip channels, relu(skip) from memory
            tl.debug_barrier()          # every thread has read the last sample's
            tl.store(ss_ptr + own_k[:, None] * SP + sc_k[None, :], skip)
            tl.debug_barrier()
        skip = skip.to(wdt)
        logits = tl.zeros([BB, QP], dtype=tl.float32) + tl.load(bl_ptr + qc)[None, :]
        for j in range(0, SP, TN):
            if HB == SP:
                hidden = tl.dot(skip, tl.load(wh_ptr + sc_k[:, None] * SP + (j + tn)[None, :]),
                                input_precision=PRECISION)
            else:
                hb = tl.arange(0, HB)
                hidden = tl.zeros([BB, TN], dtype=tl.float32)
                for s0 in tl.range(0, SP, HB, num_stages=STAGES):
                    sb = tl.load(ss_ptr + own_k[:, None] * SP + (s0 + hb)[None, :]).to(wdt)
                    hidden += tl.dot(sb, tl.load(wh_ptr + (s0 + hb)[:, None] * SP
                                                 + (j + tn)[None, :]),
                                     input_precision=PRECISION)
            hidden = hidden + tl.load(bh_ptr + j + tn)[None, :]
            hidden = tl.maximum(hidden, 0.0).to(wdt)
            logits += tl.dot(hidden, tl.load(wl_ptr + (j + tn)[:, None] * QP + qc[None, :]),
                             input_precision=PRECISION)
        if TEACHER:
            out = logits_ptr + (rows_k * num_steps + k)[:, None] * Q + qc[None, :]
            tl.store(out, logits, mask=live_k[:, None] & (qc < Q)[None, :])
        else:
            if DRAW_LOADS:  # loaded per sample: held through the layer loop, they spilled
                seed = tl.load(seed_ptr + slot_k, mask=live_k, other=0).to(tl.uint32)
                temp = tl.load(temp_ptr + slot_k, mask=live_k, other=0.0)
                sampled = temp > 0.0
                safe_temp = tl.where(sampled, temp, 1.0)
            # counter_uniform(seed, counter): lowbias32(lowbias32(seed ^ salt) ^ counter),
            # counter = pos (softmax) or pos * DRAWS + column (scalar outputs: draw j in
            # column j, a few spare columns drawn and unused)
            h = seed ^ 0x9E3779B9
            h = h ^ (h >> 16)
            h = h * 0x7FEB352D
            h = h ^ (h >> 15)
            h = h * 0x846CA68B
            h = h ^ (h >> 16)
            counter = pos_k.to(tl.uint32)
            if SCALAR:      # the low 32 bits of pos * DRAWS + column
                h = h[:, None] ^ (counter[:, None] * DRAWS + qc[None, :].to(tl.uint32))
            else:
                h = h ^ counter
            h = h ^ (h >> 16)
            h = h * 0x7FEB352D
            h = h ^ (h >> 15)
            h = h * 0x846CA68B
            h = h ^ (h >> 16)
            uniform = (h >> 8).to(tl.float32) * (1.0 / 16777216.0)
            if SCALAR:
                # sampling.sample_scalar, the same operations in the same order
                col = qc[None, :]
                if MIXTURES > 0:
                    # Gumbel-max over the mixture logits (r9y9's uniforms in
                    # [1e-5, 1 - 1e-5]), then a logistic sample from the chosen one
                    ur = 1e-5 + (1.0 - 2e-5) * uniform
                    mix = col < MIXTURES
                    gumbel = tl.where(mix, logits - tl.log(-tl.log(ur)), float("-inf"))
                    pick = tl.where(sampled, tl.argmax(gumbel, axis=1),
                                    tl.argmax(tl.where(mix, logits, float("-inf")), axis=1))
                    mean = tl.sum(tl.where(col == (pick + MIXTURES)[:, None], logits, 0.0), 1)
                    log_scale = tl.sum(tl.where(col == (pick + 2 * MIXTURES)[:, None],
                                                logits, 0.0), 1)
                    v = tl.sum(tl.where(col == MIXTURES, ur, 0.0), 1)
                    value = mean + temp * tl.exp(tl.maximum(log_scale, log_scale_min)) * (
                        tl.log(v) - tl.log(1.0 - v))
                else:
                    # Gaussian, Box-Muller (log(1 - u) for log1p(-u): 1 - u is exact)
                    mean = tl.sum(tl.where(col == 0, logits, 0.0), 1)
                    log_std = tl.sum(tl.where(col == 1, logits, 0.0), 1)
                    u0 = tl.sum(tl.where(col == 0, uniform, 0.0), 1)
                    u1 = tl.sum(tl.where(col == 1, uniform, 0.0), 1)
                    normal = (tl.sqrt(-2.0 * tl.log(1.0 - u0))
                              * tl.cos(6.283185307179586 * u1))
                    value = mean + temp * tl.exp(tl.maximum(log_std, log_scale_min)) * normal
                value = tl.minimum(tl.maximum(value, -1.0), 1.0)
                tl.store(codes_ptr + rows_k * num_steps + k, value, mask=live_k)
            else:
                # sample_codes: inverse CDF of softmax(logits / T), greedy at T = 0
                if SHAPED:      # this sample's (temperature, floor)
                    row_at = shape_ptr + (rows_k * num_steps + k) * 2
                    temp = tl.load(row_at, mask=live_k, other=0.0)
                    floor = tl.load(row_at + 1, mask=live_k, other=0.0)
                    sampled = temp > 0.0
                    safe_temp = tl.where(sampled, temp, 1.0)
                scaled = logits / safe_temp[:, None]
                probs = tl.exp(scaled - tl.max(scaled, axis=1)[:, None])
                if SHAPED:      # zero the probabilities below floor x their total
                    cut = floor * tl.sum(probs, axis=1)
                    probs = tl.where(probs < cut[:, None], 0.0, probs)
                cdf = tl.cumsum(probs, axis=1)
                target = uniform * tl.max(cdf, axis=1)
                drawn = tl.sum((cdf <= target[:, None]).to(tl.int32), axis=1)
                drawn = tl.minimum(drawn, Q - 1)
                greedy = tl.argmax(logits, axis=1).to(tl.int32)
                code = tl.where(sampled, drawn, greedy)
                if EXCITE:      # the sample: clamp(p + the excitation code's value)
                    value = tl.minimum(tl.maximum(pred + tl.load(tab_ptr + code), -1.0), 1.0)
                    tl.store(codes_ptr + rows_k * num_steps + k, value, mask=live_k)
                else:
                    tl.store(codes_ptr + rows_k * num_steps + k, code.to(tl.int64), mask=live_k)
        if LAYER_STAGES > 1:
            # every layer's x(t) over its oldest tap, 4 layers at a time, once every
            # thread has read the taps; then a barrier before the next sample reads them
            tl.debug_barrier()
            for l0 in range(0, num_layers, 4):
                lv = l0 + tl.arange(0, 4)
                lm = lv < num_layers
                m = (live[:, None] & lm[None, :])[:, :, None] & (cc < C)[None, None, :]
                stage_row = (own[:, None] * num_layers + lv[None, :]) * CP
                staged = tl.load(xs_ptr + stage_row[:, :, None] + cc[None, None, :], mask=m,
                                 other=0.0)
                spans = (KS - 1) * tl.load(dil_ptr + lv, mask=lm, other=1)
                if RING_LCM > 0 and (RING_LCM & (RING_LCM - 1)) == 0:
                    cols = head[:, None] & (spans[None, :] - 1)
                else:
                    cols = head[:, None] % spans[None, :]
                ring_row = ((slot * ring_len)[:, None] + cols
                            + tl.load(off_ptr + lv, mask=lm, other=0)[None, :])
                tl.store(ring_ptr + (ring_row * C)[:, :, None] + cc[None, None, :], staged,
                         mask=m)
            tl.debug_barrier()
        if not WIDE:
            pos += 1
    if WIDE:        # reloaded, as in the loop
        slot = tl.load(slots_ptr + rows, mask=live, other=0)
        pos = tl.load(pos_ptr + slot, mask=live, other=0) + num_steps
    tl.store(pos_ptr + slot, pos, mask=live)
    if not TEACHER:
        if VALUES:
            tl.store(next_ptr + slot, value, mask=live)
        else:
            tl.store(next_ptr + slot, code.to(tl.int64), mask=live)
