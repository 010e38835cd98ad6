"""Weight formats of the compiled CPU backend and their 16-lane loads (see docs/cpu-kernel.md).

A matrix is stored as `[inputs, outputs]` panels (cpu/backend.py) in one of five formats;
the dtype of the weight buffer says which, and numba compiles one kernel per format:

- fp32  (float32): the weights as trained.
- bf16  (uint16, bfloat16 bits): half the bytes. In a full 64-wide panel row the 64 values
  are interleaved in pairs, so one 64-byte load of 16 x i32 gives two vectors of outputs:
  `x << 16` (the low halves: outputs 0..15) and `x & 0xFFFF0000` (the high halves: outputs
  16..31), two integer ops per 32 weights instead of a widening load per 16. A 16-wide tail
  vector is plain: load 16 x i16, widen, shift.
- int8  (int8, one float32 scale per output column): a quarter of the bytes. The inner loop
  accumulates x * q from zero, and the column's scale and the bias/init are applied once at
  the end: y = fma(acc, scale, init).
- bf16a (uint32) and int8a (int32): the dot formats, which round the activations too
  (cpu/dot.py): a word holds 2 (bf16) or 4 (int8) consecutive inputs of one column.

Every format accumulates with the same chain per output element, in input order (int8a
in exact int32), so batch invariance and the bitwise equality of the multi-core split hold for each.
"""

from __future__ import annotations

import numpy as np
import torch
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from wavenet_core.generation.cpu.dot import _kind, flush_start, mac
from wavenet_core.generation.cpu.simd import _LLVEC, F32X16, LANES, PANEL

PRECISIONS = ("fp32", "bf16", "int8", "bf16a", "int8a")
WEIGHT_DTYPES = {"fp32": np.float32, "bf16": np.uint16, "int8": np.int8,
                 "bf16a": np.uint32, "int8a": np.int32}

_I32 = ir.IntType(32)
_I32X16 = ir.VectorType(_I32, LANES)
_HI_MASK = ir.Constant(_I32X16, [-65536] * LANES)       # 0xFFFF0000
_SHIFT16 = ir.Constant(_I32X16, [16] * LANES)


def _ptr(context, builder, arrty, arr, index, elem_vec):
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.bitcast(builder.gep(data, [index]), elem_vec.as_pointer())


def _load16(context, builder, arrty, arr, index):
    """16 weights starting at flat element `index` -> one float32 vector (plain order)."""
    kind = _kind(arrty)
    if kind in ("fp32", "bf16a", "int8a"):       # floats, or words carried as their bits
        return builder.load(_ptr(context, builder, arrty, arr, index, _LLVEC), align=4)
    if kind == "bf16":
        raw = builder.load(_ptr(context, builder, arrty, arr, index,
                                ir.VectorType(ir.IntType(16), LANES)), align=2)
        wide = builder.shl(builder.zext(raw, _I32X16), _SHIFT16)
        return builder.bitcast(wide, _LLVEC)
    raw = builder.load(_ptr(context, builder, arrty, arr, index,
                            ir.VectorType(ir.IntType(8), LANES)), align=1)
    return builder.sitofp(builder.sext(raw, _I32X16), _LLVEC)


@intrinsic
def _wload1(typingctx, arr, index):
    """One 16-wide tail vector of weights at `index`, as float32."""
    _kind(arr)

    def codegen(context, builder, sig, args):
        return _load16(context, builder, sig.args[0], args[0], args[1])
    return F32X16(arr, index), codegen


@intrinsic
def _wload4(typingctx, arr, index):
    """One 64-wide panel row of weights at `index` -> 4 float32 vectors (outputs 0..63)."""
    kind = _kind(arr)

    def codegen(context, builder, sig, args):
        arrty, arr_v, index_v = sig.args[0], args[0], args[1]
        if kind == "bf16":
            vecs = []
            for half in range(2):
                at = builder.add(index_v, ir.Constant(index_v.type, 32 * half))
                pair = builder.load(_ptr(context, builder, arrty, arr_v, at, _I32X16), align=2)
                vecs.append(builder.bitcast(builder.shl(pair, _SHIFT16), _LLVEC))
                vecs.append(builder.bitcast(builder.and_(pair, _HI_MASK), _LLVEC))
        else:
            vecs = []
            for v in range(4):
                at = builder.add(index_v, ir.Constant(index_v.type, 16 * v))
                vecs.append(_load16(context, builder, arrty, arr_v, at))
        return context.make_tuple(builder, sig.return_type, vecs)
    return types.UniTuple(F32X16, 4)(arr, index), codegen


@intrinsic
def _eight_row_blocks(typingctx, arr):
    """Whether `_matmul` uses 8 x 32 blocks for this format: int8 only, a compile-time
    constant. Each weight load (and its widening) then serves 8 rows instead of 4: int8
    gained 3-6% at batch 16, while fp32 lost 13% and bf16 5-9% (docs/cpu-kernel.md)."""
    kind = _kind(arr)

    def codegen(context, builder, sig, args):
        return ir.Constant(ir.IntType(1), kind == "int8")
    return types.boolean(arr), codegen


@intrinsic
def _wload2(typingctx, arr, index):
    """Half a 64-wide panel row, 32 outputs starting at row element `index` (the row's
    start, or start + 32) -> 2 float32 vectors. In bf16 that half is one 64-byte load."""
    kind = _kind(arr)

    def codegen(context, builder, sig, args):
        arrty, arr_v, index_v = sig.args[0], args[0], args[1]
        if kind == "bf16":
            pair = builder.load(_ptr(context, builder, arrty, arr_v, index_v, _I32X16), align=2)
            vecs = [builder.bitcast(builder.shl(pair, _SHIFT16), _LLVEC),
                    builder.bitcast(builder.and_(pair, _HI_MASK), _LLVEC)]
        else:
            vecs = [_load16(context, builder, arrty, arr_v,
                            builder.add(index_v, ir.Constant(index_v.type, 16 * v)))
                    for v in range(2)]
        return context.make_tuple(builder, sig.return_type, vecs)
    return types.UniTuple(F32X16, 2)(arr, index), codegen


@intrinsic
def _mac(typingctx, w, a, b, acc):
    """acc + a * b for w's format: one fma, or one dot instruction over a word of inputs
    (cpu/dot.py)."""
    kind = _kind(w)

    def codegen(context, builder, sig, args):
        return mac(builder, kind, args[1], args[2], args[3])
    return F32X16(w, a, b, acc), codegen


def _load_vec(context, builder, arrty, arr, at):
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.load(builder.bitcast(builder.gep(data, [at]), _LLVEC.as_pointer()), align=4)


@intrinsic
def _acc_init(typingctx, w, init, index, x, xi):
    """Start of an output vector's chain: the bias/init row (fp32, bf16, bf16a), 0 (int8,
    whose init is added after the scale) or the row's correction -128 sum q at x[xi]
    (int8a, packed by cpu.dot.pack_rows)."""
    kind = _kind(w)

    def codegen(context, builder, sig, args):
        if kind == "int8":
            return ir.Constant(_LLVEC, [0.0] * LANES)
        if kind == "int8a":
            data = context.make_array(sig.args[3])(context, builder, args[3]).data
            word = builder.load(builder.gep(data, [args[4]]))
            lane0 = builder.insert_element(ir.Constant(_LLVEC, ir.Undefined), word,
                                           ir.Constant(_I32, 0))
            return builder.shuffle_vector(lane0, ir.Constant(_LLVEC, ir.Undefined),
                                          ir.Constant(_I32X16, [0] * LANES))
        start = _load_vec(context, builder, sig.args[1], args[1], args[2])
        return flush_start(builder, start) if kind == "bf16a" else start
    return F32X16(w, init, index, x, xi), codegen


@intrinsic
def _acc_final(typingctx, w, acc, scales, s_index, init, index, x, xi):
    """End of the chain: acc (fp32, bf16, bf16a), fma(acc, scale, init) (int8) or
    fma(float(acc), scale * the row's scale x[xi + 1], init) (int8a)."""
    kind = _kind(w)

    def codegen(context, builder, sig, args):
        if kind not in ("int8", "int8a"):
            return args[1]
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_LLVEC, [_LLVEC] * 3), "llvm.fma.v16f32")
        scale = _load_vec(context, builder, sig.args[2], args[2], args[3])
        start = _load_vec(context, builder, sig.args[4], args[4], args[5])
        acc = args[1]
        if kind == "int8a":
            data = context.make_array(sig.args[6])(context, builder, args[6]).data
            one = ir.Constant(args[7].type, 1)
            row = builder.load(builder.gep(data, [builder.add(args[7], one)]))
            lane0 = builder.insert_element(ir.Constant(_LLVEC, ir.Undefined), row,
                                           ir.Constant(_I32, 0))
            row = builder.shuffle_vector(lane0, ir.Constant(_LLVEC, ir.Undefined),
                                         ir.Constant(_I32X16, [0] * LANES))
            scale = builder.fmul(scale, row)
            acc = builder.sitofp(builder.bitcast(acc, _I32X16), _LLVEC)
        return builder.call(fma, [acc, scale, start])
    return F32X16(w, acc, scales, s_index, init, index, x, xi), codegen


# -- encoding (host side) ----------------------------------------------------------------

def bf16_bits(w: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (round to nearest even), as uint16."""
    t = torch.from_numpy(np.ascontiguousarray(w, np.float32)).to(torch.bfloat16)
    return t.view(torch.int16).numpy().view(np.uint16)


def int8_codes(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[inputs, outputs] float32 -> (int8 codes, float32 scale per output column):
    symmetric, scale = max |w| / 127 per column (1 for an all-zero column)."""
    peak = np.abs(w).max(axis=0)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return codes, scale


def flushed_bf16_bits(w: np.ndarray) -> np.ndarray:
    """bf16_bits with the values below the smallest normal flushed to zero (of the same
    sign), as the dot instruction reads them (DAZ)."""
    bits = bf16_bits(w)
    return np.where(bits & 0x7F80, bits, bits & 0x8000).astype(np.uint16)


def _words(parts: np.ndarray, group: int, bits: int) -> np.ndarray:
    """[inputs, outputs] unsigned parts -> [inputs / group, outputs] words, input g*i in
    the lowest bits."""
    n_in = parts.shape[0]
    if n_in % group:
        raise ValueError(f"{n_in} inputs do not form groups of {group}")
    parts = parts.astype(np.uint32).reshape(n_in // group, group, -1)
    word = np.zeros(parts[:, 0].shape, np.uint32)
    for j in range(group):
        word |= parts[:, j] << np.uint32(bits * j)
    return word


def rounded(w: np.ndarray, precision: str) -> np.ndarray:
    """The float32 values a format's kernel multiplies by (for references and NLL cost).
    The dot formats also round the activations (cpu/dot.py), which this does not show."""
    if precision == "fp32":
        return np.asarray(w, np.float32)
    if precision in ("bf16", "bf16a"):
        bits = bf16_bits(w) if precision == "bf16" else flushed_bf16_bits(w)
        return (bits.astype(np.uint32) << 16).view(np.float32)
    codes, scale = int8_codes(w)
    return codes.astype(np.float64) * scale.astype(np.float64)


def encode_panels(w: np.ndarray, precision: str) -> tuple[np.ndarray, np.ndarray]:
    """[inputs, outputs] (outputs a multiple of 16) -> (flat panels in the format's dtype,
    float32 column scales: int8 only, else empty). Panels of 64 outputs, then the tail."""
    scales = np.zeros(0, np.float32)
    if precision in ("int8", "int8a"):
        w, scales = int8_codes(w)
        if precision == "int8a":          # unsigned bytes (code + 128), four inputs a word
            w = _words((w.astype(np.int16) + 128).astype(np.uint8), 4, 8).view(np.int32)
    elif precision == "bf16a":
        w = _words(flushed_bf16_bits(w), 2, 16)
    elif precision == "bf16":
        w = bf16_bits(w)
    else:
        w = np.asarray(w, np.float32)
    n_in, n_out = w.shape
    parts = []
    for a in range(0, n_out, PANEL):
        block = w[:, a:a + PANEL]
        if block.shape[1] == PANEL and precision == "bf16":
            # per row: [o0, o16, o1, o17, ..., o15, o31, o32, o48, ..., o47, o63]
            block = block.reshape(n_in, 2, 2, LANES).transpose(0, 1, 3, 2)
        parts.append(np.ascontiguousarray(block).ravel())
    flat = np.concatenate(parts) if parts else np.zeros(0, w.dtype)
    return flat, scales
