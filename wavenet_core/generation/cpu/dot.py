"""The dot-instruction weight formats of the compiled CPU kernel (docs/cpu-kernel.md,
"Dot formats"): bf16a (`vdpbf16ps`, AVX512-BF16) and int8a (`vpdpbusd`, AVX-512 VNNI),
which round the activations too, each with a portable path that gives the same bits.

A weight word holds a group of consecutive inputs for one output column: bf16a two
bfloat16 (input 2i in the low half), int8a four int8 codes + 128 (unsigned bytes, input
4i in the lowest byte). Panels are laid out as for fp32, one word per (group, column).
Before a matrix, each row of its input is packed the same way into the call's scratch
(`pack_rows`), so the micro-kernels broadcast one word per group:
- bf16a: each activation rounded to bfloat16 (to nearest even, a result below the
  smallest normal flushed to zero). `vdpbf16ps` then does, per lane, acc += x[2i+1] w[2i+1]
  and then acc += x[2i] w[2i], each product exact and each sum rounded (an fma), results
  below the smallest normal flushed to zero, the starting acc too (measured on the AMD EPYC:
  odd first, 0 of 320,000 lanes differ from that; even first or one rounding differ). The
  portable path does exactly that with two fmas and the flushes.
- int8a: per row and per matrix input a dynamic scale a = max|x| / 127, codes
  q = roundeven(x * (127 / max|x|)) in [-127, 127] (signed). `vpdpbusd` multiplies the
  unsigned weight bytes (code + 128) by the signed activation codes, four per lane, exactly
  in int32, so acc = sum q w + 128 sum q: the row's correction -128 sum q starts the
  chain. y = fma(float(acc), colscale * a, init). Integer sums do not depend on the order,
  so the portable path (widen, multiply, add) is exact too.
A row's packing and chain never read another row, so batch invariance, chunk invariance
and the split's bitwise equality hold as for the other formats.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from wavenet_core.generation.cpu.simd import _JIT, _LLVEC, F32X16, LANES, _target_has

NATIVE_BF16 = _target_has("avx512bf16")    # vdpbf16ps (else the portable path)
NATIVE_VNNI = _target_has("avx512vnni")    # vpdpbusd
GROUP = {"fp32": 1, "bf16": 1, "int8": 1, "bf16a": 2, "int8a": 4}   # inputs per word
ROW_PAD = LANES          # scratch words after a packed row: [correction, scale, ...]

_I8, _I16, _I32 = ir.IntType(8), ir.IntType(16), ir.IntType(32)
_I32X16 = ir.VectorType(_I32, LANES)
_TINY = ir.Constant(_I32X16, [0x00800000] * LANES)     # smallest normal float32, as bits
_ABS = ir.Constant(_I32X16, [0x7FFFFFFF] * LANES)
_SIGN = ir.Constant(_I32X16, [-0x80000000] * LANES)


class _BFloat(ir.Type):
    """LLVM's `bfloat` (llvmlite has no such type): the operand type of dpbf16ps."""

    def _to_string(self):
        return "bfloat"

    def __eq__(self, other):
        return isinstance(other, _BFloat)

    def __hash__(self):
        return hash("bfloat")


_BF16X32 = ir.VectorType(_BFloat(), 2 * LANES)
_I8X64 = ir.VectorType(_I8, 4 * LANES)


def _kind(arrty) -> str:
    """A weight buffer's format, from its dtype (numba compiles one kernel per format)."""
    kinds = {types.float32: "fp32", types.uint16: "bf16", types.int8: "int8",
             types.uint32: "bf16a", types.int32: "int8a"}
    if arrty.dtype not in kinds:
        raise TypeError(f"unsupported weight dtype {arrty.dtype}")
    return kinds[arrty.dtype]


def _call(builder, name, ret, args):
    fn = cgutils.get_or_insert_function(builder.module,
                                        ir.FunctionType(ret, [a.type for a in args]), name)
    return builder.call(fn, args)


def _flush(builder, v):
    """Float32 lanes below the smallest normal -> zero of the same sign (FTZ/DAZ)."""
    bits = builder.bitcast(v, _I32X16)
    tiny = builder.icmp_unsigned("<", builder.and_(bits, _ABS), _TINY)
    return builder.bitcast(builder.select(tiny, builder.and_(bits, _SIGN), bits), _LLVEC)


def flush_start(builder, v, portable=False):
    """What dpbf16ps does to the accumulator it starts from (DAZ), made explicit where the
    portable path runs."""
    return v if NATIVE_BF16 and not portable else _flush(builder, v)


def mac(builder, kind, w, x, acc, portable=False):
    """One step of an output vector's chain: acc + w * x for the float formats (one fma),
    a word of inputs for the dot formats (w, x and acc are <16 x float> carrying bits).
    `portable` takes the portable path even where the instruction exists (tests)."""
    if kind == "bf16a":
        if NATIVE_BF16 and not portable:
            return _call(builder, "llvm.x86.avx512bf16.dpbf16ps.512", _LLVEC,
                         [acc, builder.bitcast(x, _BF16X32), builder.bitcast(w, _BF16X32)])
        wb, xb = builder.bitcast(w, _I32X16), builder.bitcast(x, _I32X16)
        for hi in (True, False):          # input 2i + 1 first, then 2i
            def half(bits, hi=hi):
                if hi:
                    return builder.and_(bits, ir.Constant(_I32X16, [-65536] * LANES))
                return builder.shl(bits, ir.Constant(_I32X16, [16] * LANES))
            acc = _flush(builder, _call(builder, "llvm.fma.v16f32", _LLVEC,
                                        [builder.bitcast(half(xb), _LLVEC),
                                         builder.bitcast(half(wb), _LLVEC), acc]))
        return acc
    if kind == "int8a":
        a = builder.bitcast(acc, _I32X16)
        if NATIVE_VNNI and not portable:
            out = _call(builder, "llvm.x86.avx512.vpdpbusd.512", _I32X16,
                        [a, builder.bitcast(w, _I8X64), builder.bitcast(x, _I8X64)])
            return builder.bitcast(out, _LLVEC)
        wb, xb = builder.bitcast(w, _I32X16), builder.bitcast(x, _I32X16)
        for byte in range(4):
            shift = ir.Constant(_I32X16, [8 * (3 - byte)] * LANES)
            down = ir.Constant(_I32X16, [24] * LANES)
            wv = builder.lshr(builder.shl(wb, shift), down)      # unsigned weight byte
            xv = builder.ashr(builder.shl(xb, shift), down)      # signed activation code
            a = builder.add(a, builder.mul(wv, xv))
        return builder.bitcast(a, _LLVEC)
    return _call(builder, "llvm.fma.v16f32", _LLVEC, [w, x, acc])


def _vec_ptr(context, builder, arrty, arr, index, vec):
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.bitcast(builder.gep(data, [index]), vec.as_pointer())


# -- packing a row of activations (host of the scratch: float32 arrays holding words) ----

@intrinsic
def _pack_bf16(typingctx, x, xi, q, qi):
    """x[xi:xi+16] rounded to bfloat16 (nearest even, below the smallest normal -> 0) ->
    8 words of pairs at q[qi:qi+8]."""
    def codegen(context, builder, sig, args):
        u = builder.load(_vec_ptr(context, builder, sig.args[0], args[0], args[1], _I32X16),
                         align=4)
        odd = builder.and_(builder.lshr(u, ir.Constant(_I32X16, [16] * LANES)),
                           ir.Constant(_I32X16, [1] * LANES))
        r = builder.add(builder.add(u, ir.Constant(_I32X16, [0x7FFF] * LANES)), odd)
        r = builder.bitcast(_flush(builder, builder.bitcast(r, _LLVEC)), _I32X16)
        half = builder.trunc(builder.lshr(r, ir.Constant(_I32X16, [16] * LANES)),
                             ir.VectorType(_I16, LANES))
        out = builder.bitcast(half, ir.VectorType(_I32, LANES // 2))
        builder.store(out, _vec_ptr(context, builder, sig.args[2], args[2], args[3],
                                    out.type), align=4)
        return context.get_dummy_value()
    return types.none(x, xi, q, qi), codegen


@intrinsic
def _absmax(typingctx, x, xi, m):
    """max(m, |x[xi:xi+16]|) lane by lane."""
    def codegen(context, builder, sig, args):
        v = builder.load(_vec_ptr(context, builder, sig.args[0], args[0], args[1], _LLVEC),
                         align=4)
        v = _call(builder, "llvm.fabs.v16f32", _LLVEC, [v])
        return builder.select(builder.fcmp_ordered(">", v, args[2]), v, args[2])
    return F32X16(x, xi, m), codegen


def _halves(builder, v, reduce):
    """reduce(lane i, lane i + w) for w = 8, 4, 2, 1: lane 0 then holds all 16 reduced in a
    tree, 4 dependent steps where a chain over the lanes took 15 (exact for max and integer
    sums, so the same value as any order)."""
    undef = ir.Constant(v.type, ir.Undefined)
    width = LANES // 2
    while width:
        upper = [i + width if i < width else i for i in range(LANES)]
        v = reduce(v, builder.shuffle_vector(v, undef, ir.Constant(_I32X16, upper)))
        width //= 2
    return builder.extract_element(v, ir.Constant(_I32, 0))


@intrinsic
def _lane_max(typingctx, m):
    def codegen(context, builder, sig, args):
        return _halves(builder, args[0], lambda a, b: builder.select(
            builder.fcmp_ordered(">", b, a), b, a))
    return types.float32(m), codegen


@intrinsic
def _pack_int8(typingctx, x, xi, inv, q, qi, total):
    """x[xi:xi+16] -> codes roundeven(x * inv) (signed bytes) as 4 words at q[qi:qi+4];
    returns total + the codes (int32 lanes, carried as a float vector's bits)."""
    def codegen(context, builder, sig, args):
        v = builder.load(_vec_ptr(context, builder, sig.args[0], args[0], args[1], _LLVEC),
                         align=4)
        lane0 = builder.insert_element(ir.Constant(_LLVEC, ir.Undefined), args[2],
                                       ir.Constant(_I32, 0))
        inv = builder.shuffle_vector(lane0, ir.Constant(_LLVEC, ir.Undefined),
                                     ir.Constant(_I32X16, [0] * LANES))
        r = _call(builder, "llvm.roundeven.v16f32", _LLVEC, [builder.fmul(v, inv)])
        codes = builder.fptosi(r, _I32X16)
        out = builder.bitcast(builder.trunc(codes, ir.VectorType(_I8, LANES)),
                              ir.VectorType(_I32, LANES // 4))
        builder.store(out, _vec_ptr(context, builder, sig.args[3], args[3], args[4],
                                    out.type), align=4)
        total_v = builder.add(builder.bitcast(args[5], _I32X16), codes)
        return builder.bitcast(total_v, _LLVEC)
    return F32X16(x, xi, inv, q, qi, total), codegen


@intrinsic
def _lane_sum_i32(typingctx, total):
    def codegen(context, builder, sig, args):
        return builder.sext(_halves(builder, builder.bitcast(args[0], _I32X16), builder.add),
                            ir.IntType(64))
    return types.int64(total), codegen


@intrinsic
def _store_word(typingctx, q, qi, value):
    """q.flat[qi] = the int32 `value`'s bits."""
    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        ptr = builder.bitcast(builder.gep(data, [args[1]]), _I32.as_pointer())
        builder.store(builder.trunc(args[2], _I32), ptr)
        return context.get_dummy_value()
    return types.none(q, qi, value), codegen


@intrinsic
def group_of(typingctx, w):
    """Inputs per weight word of this format: a compile-time constant."""
    group = GROUP[_kind(w)]

    def codegen(context, builder, sig, args):
        return ir.Constant(ir.IntType(64), group)
    return types.int64(w), codegen


_ZERO16 = np.float32(0.0)
_I127 = np.float32(127.0)


@njit(**_JIT)
def pack_rows(w, x, xo, xld, n_in, n, q, qld):
    """Rows r < n of x (at xo + r xld, n_in a multiple of 16) packed in w's dot format at
    q[r qld:]: n_in / group words, then (int8a) the correction -128 sum q and the scale."""
    group = group_of(w)
    for r in range(n):
        xr = xo + r * xld
        qr = r * qld
        if group == 2:
            for v in range(0, n_in, LANES):
                _pack_bf16(x, xr + v, q, qr + v // 2)
        else:
            m = _absmax(x, xr, _zeros())
            for v in range(LANES, n_in, LANES):
                m = _absmax(x, xr + v, m)
            peak = _lane_max(m)
            inv = _I127 / peak if peak > _ZERO16 else _ZERO16
            total = _zeros()
            for v in range(0, n_in, LANES):
                total = _pack_int8(x, xr + v, inv, q, qr + v // 4, total)
            words = n_in // 4
            _store_word(q, qr + words, -128 * _lane_sum_i32(total))
            q[qr + words + 1] = peak / _I127


@intrinsic
def _zeros(typingctx):
    def codegen(context, builder, sig, args):
        return ir.Constant(_LLVEC, [0.0] * LANES)
    return F32X16(), codegen
