"""How the triton kernel is built for a model: its padded widths and channel blocks within
the shared-memory budget, and the per-model switches (wide settings, pipeline depths,
fused gate dots, per-draw loads, the ring period). Pure arithmetic on the config, used by
the backend's launch and by `aot.compile_kernel` alike, so both build the same kernel;
the figures behind each rule are in docs/triton-kernel.md."""

from __future__ import annotations

import math

from wavenet_core.generation.sampling import draws_per_sample

TILE_BYTES = 64 << 10              # most bytes of one weight tile (a dot operand in shared memory)
FP32_TILE_BYTES = 8 << 10          # most bytes of an fp32 gate/residual/skip weight block
FP32_BLOCK = 16                    # fp32 head blocks: hidden units (TN), skip channels (HB)
SHARED_BYTES = 192 << 10           # most shared memory of all staged tiles (sm_90: 227 KiB)
WIDE = 256                         # residual channels past which the wide-model settings apply


def _pow2(n: int) -> int:
    return max(16, 1 << (int(n) - 1).bit_length())


def _rows_fitting(width: int, most: int, itemsize: int, limit: int = TILE_BYTES) -> int:
    """The largest power of two <= most (and >= 16) of rows of `width` weights that fit
    in `limit` bytes."""
    rows = most
    while rows > 16 and rows * width * itemsize > limit:
        rows //= 2
    return rows


def kernel_shape(config, precision: str) -> tuple[int, ...]:
    """(CP, GP, SP, QP, TN, CB, GB, HB). Padded widths CP, GP, SP, QP: powers of two >= 16,
    tl.dot's minimum. The head tile TN: hidden units per step of the head loop, so that its
    [S, TN] and [TN, outputs] weight tiles (dot operands, staged in shared memory) fit in
    64 KiB each. The channel blocks: CB input channels of a gate dot ([CB, GP] tiles), GB
    z channels of the residual and skip dots ([GB, CP], [GB, SP]), HB skip channels of the
    head's first dot ([HB, TN]). In fp16, CB = CP, GB = GP, HB = SP where whole tiles fit
    (the one-block kernel). In fp32 the gate, residual and skip blocks fit FP32_TILE_BYTES
    and TN, HB are FP32_BLOCK: an IEEE fp32 dot is an FMA dot, which holds each thread's
    whole operand rows and columns in registers, so wider blocks spill (measured on the
    sm_90 builds: docs/triton-kernel.md, "Speed, estimated"). Then CB or GB (the one whose
    tiles are larger) halves until all the tiles the kernel stages fit SHARED_BYTES
    (`shared_estimate`), not one tile at a time."""
    cp, gp, sp, qp = (_pow2(n) for n in (config.residual_channels, config.gate_width,
                                         config.skip_channels, config.output_channels))
    itemsize = 2 if precision == "fp16" else 4
    fp32 = precision == "fp32"
    limit = FP32_TILE_BYTES if fp32 else TILE_BYTES
    head = FP32_BLOCK if fp32 else sp
    tn = min(sp, head, max(16, TILE_BYTES // (max(sp, qp) * itemsize)))
    cb = _rows_fitting(gp, cp, itemsize, limit)
    gb = _rows_fitting(max(cp, sp), gp, itemsize, limit)
    stages = block_stages(config)
    while (shared_estimate((cp, gp, sp, qp, tn, cb, gb, min(sp, head)), itemsize, stages)
           > SHARED_BYTES and max(cb, gb) > 16):
        if gb == 16 or (cb > 16 and cb * gp >= gb * (cp + sp)):
            cb //= 2
        else:
            gb //= 2
    return cp, gp, sp, qp, tn, cb, gb, min(sp, head)


def shared_estimate(shape, itemsize: int, stages: int, block: int = 16) -> int:
    """Bytes of shared memory the kernel stages, the largest of its loops' (they run in
    turn and share it): a block loop pipelined `stages` deep keeps stages - 1 copies of
    its weight and input blocks; an unblocked dot its [K, N] operand. The sm_90 builds
    measured lie within 4 KiB above it (configs A and B fp32, r9y9 fp32: equal; r9y9 fp16:
    4 KiB; docs/triton-kernel.md, "Wide models"), the one-block fp16 builds below it but
    for a pipelined layer loop's two buffers of a layer, which `layer_stages` checks."""
    cp, gp, sp, qp, tn, cb, gb, hb = shape
    copies = max(1, stages - 1)
    gate = (2 * cb * gp + block * cb) * (copies if cb < cp else 1)
    out = (gb * (cp + sp) + block * gb) * (copies if gb < gp else 1)
    head = (hb * tn + block * hb) * (copies if hb < sp else 1) + tn * qp
    return max(gate, out, head) * itemsize


def is_wide(config) -> bool:
    """Past WIDE residual channels the kernel takes its wide-model settings."""
    return config.residual_channels > WIDE


def block_stages(config) -> int:
    """Pipeline depth of the channel-block loops: 3 (two blocks' copies in flight), 2 for
    models wider than WIDE residual channels, where the deeper pipelines' addresses spilled
    (r9y9's preset, fp32: 376 bytes at 3 stages, none at 2; docs/triton-kernel.md)."""
    return 2 if is_wide(config) else 3


# Warps per program, every model and precision. fp32's FMA dots hold operands in registers,
# which 8 warps spread; a model wider than WIDE residual channels holds [16, C] rows per
# thread (r9y9 fp16: 612 spilled bytes at 4, 72 at 8); fp16's pipelined layer loop
# (`layer_stages`) needs 8 to fit config B in 255 registers without spills (4 warps spilled
# 184 bytes per thread; sm_90 builds, docs/triton-kernel.md "Speed, estimated").
NUM_WARPS = 8


def fused_gate(config, precision: str) -> bool:
    """One [16, C] x [C, 2G] dot per tap (filter and gate columns interleaved) instead of
    two: in fp16 where the gate is one block (config B fp16: 6 -> 4 dots a layer, est. 7%
    faster); not in fp32, whose FMA dot holds every output column's operand in registers
    (config A fp32 fused spilled 216 bytes)."""
    cp, _, _, _, _, cb, _, _ = kernel_shape(config, precision)
    return precision == "fp16" and cb == cp


def layer_stages(config, precision: str, num_warps: int, block: int = 16) -> int:
    """3: Triton pipelines the layer loop with two shared-memory buffers per operand
    (the copies of the next layers' weights, bias rows and oldest taps are in flight
    while this layer computes; the loop then holds no barrier, x(t) goes into the rings
    after it; 2 stages gave one buffer, refilled only after its layer had read it: the
    copies waited on at the next layer's top, 2.5% slower in config B fp16). Only for the
    one-block kernel (a loop with inner loops is not pipelined), not wide, whose
    loop-carried skip sum takes at most 16 registers a thread: config A's [16, 512]
    spilled 24 bytes at 8 warps; and whose two buffers of a layer's operands (its weights,
    the oldest tap and bias rows in float32) fit SHARED_BYTES (B fp16: 139,264 bytes
    estimated, 143,360 built). Else 1 (x(t) written in the loop)."""
    cp, gp, sp, _, _, cb, gb, _ = kernel_shape(config, precision)
    one_block = cb == cp and gb == gp and not is_wide(config)
    itemsize = 2 if precision == "fp16" else 4
    layer = ((config.kernel_size * cp * 2 * gp + gp * (cp + sp)) * itemsize
             + block * (cp + 2 * gp) * 4)
    fits = 2 * layer <= SHARED_BYTES
    return 3 if one_block and fits and block * sp <= 16 * 32 * num_warps else 1


def draw_loads(config, precision: str, num_warps: int, block: int = 16) -> bool:
    """Whether the kernel loads each slot's seed and temperature at every sample's draw
    rather than once before the sample loop, where they are held through the layer loop:
    for a model wider than WIDE, and in fp32 where the skip sum takes more than 16
    registers a thread (config A), builds which spilled them (sm_90: config A fp32 8
    bytes, none this way); not elsewhere, where the loads cost instructions and registers
    (config A fp16: 234 -> 238 registers, 0.7% more instructions a sample) or spilled
    (B fp16 12 bytes, B fp32 with a mel 172; docs/triton-kernel.md, "Wide models")."""
    heavy_skip = block * _pow2(config.skip_channels) > 16 * 32 * num_warps
    return is_wide(config) or (precision == "fp32" and heavy_skip)


def ring_period(config) -> int:
    """The least common multiple of the layers' ring lengths (k - 1) d when it is at most
    2**30: the kernel takes pos % it once per sample and every ring column in int32;
    else 0 (int64 pos % length per layer)."""
    period = math.lcm(*((config.kernel_size - 1) * d for d in config.dilations))
    return period if period <= 1 << 30 else 0


def require_fit(config, precision: str) -> None:
    """Refuse a model whose tiles exceed SHARED_BYTES even in blocks of 16 channels
    (`shared_estimate` of kernel_shape's blocks): the kernel would not fit an SM's shared
    memory (and compiling it takes minutes before failing). Wider tiles run in channel
    blocks."""
    need = shared_estimate(kernel_shape(config, precision), 2 if precision == "fp16" else 4,
                           block_stages(config))
    if need > SHARED_BYTES:
        raise ValueError(f"the triton kernel needs {need >> 10} KiB of shared memory even in "
                         f"blocks of 16 channels (> {SHARED_BYTES >> 10} KiB): this model is "
                         f"too wide for it; use the 'torch' backend")


def model_constexprs(config, precision: str, num_warps: int, block: int) -> dict:
    """The kernel's constexprs that the model, its precision, warps and block fix (a
    call adds TEACHER, LOCAL, SHAPED, PRECISION, ASM): one dict for the backend's launch
    and `aot.compile_kernel`, so the build measured is the build run."""
    cp, gp, sp, qp, tn, cb, gb, hb = kernel_shape(config, precision)
    order = config.lpc_order if config.lpc_excitation else 1
    op = max(2, 1 << (order - 1).bit_length())          # the LPC history, padded
    return dict(C=config.residual_channels, Q=config.output_channels, CP=cp, GP=gp, SP=sp,
                QP=qp, TN=tn, BB=block, KS=config.kernel_size, OUT_BIAS=config.out_bias,
                SCALED=config.residual_scale != 1.0, SCALAR=config.scalar_io,
                MIXTURES=config.mixtures, DRAWS=draws_per_sample(config),
                EXCITE=config.lpc_excitation,
                VALUES=config.scalar_io or config.lpc_excitation,
                ORDER=order, OP=op, LOG_OP=op.bit_length() - 1,
                TP=max(2, 1 << (config.classes - 2).bit_length()),   # mu-law thresholds
                CB=cb, GB=gb, HB=hb, RING_LCM=ring_period(config),
                STAGES=block_stages(config), WIDE=is_wide(config),
                LAYER_STAGES=layer_stages(config, precision, num_warps, block),
                FUSED=fused_gate(config, precision),
                DRAW_LOADS=draw_loads(config, precision, num_warps, block))
