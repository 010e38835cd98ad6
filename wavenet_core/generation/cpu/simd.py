"""Numba building blocks of the compiled CPU backend: 16-lane float32 vectors (load, store,
splat, fused multiply-add as LLVM intrinsics), vectorizable tanh and exp, the counter
uniforms (bitwise `sampling.counter_uniform`'s), aligned buffers. The sampler: cpu/sampler.py.
See cpu/backend.py for the design.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

from wavenet_core.generation.cpu import cache  # noqa: F401  (before any kernel)
from wavenet_core.generation.sampling import MASK32, MIX_1, MIX_2, SEED_SALT

# Every fast-math flag except `reassoc` (and `arcp`/`afn`): sums keep their written order.
FASTMATH = {"nnan", "ninf", "nsz", "contract"}
_JIT = dict(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy")

def _target_has(feature: str) -> bool:
    """Whether numba compiles for a CPU with LLVM feature `feature` (e.g. "avx512f"), from
    NUMBA_CPU_FEATURES if set, else this host's. Without avx512f a 16-lane vector takes
    two of the 16 AVX2 registers."""
    import llvmlite.binding as llvm
    import numba

    features = numba.config.CPU_FEATURES or llvm.get_host_cpu_features().flatten()
    return f"+{feature}" in features.split(",")


# Register blocks of 16 accumulators (4 x 64, 8 x 32, one row x 128) need AVX-512; with
# AVX2 they spill, so cpu.kernels._matmul uses blocks of 4 vectors there (2 x 32, 1 x 64).
WIDE_REGISTERS = _target_has("avx512f")
LANES = 16            # floats per vector
PANEL = 64            # outputs per weight panel (4 vectors)
ROWS = 4              # rows per register block
SUB_STEPS = 32        # steps whose local projections are precomputed together
PREFETCH_LAYERS = 2   # ring taps are prefetched this many layers ahead

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
def _prefetch(typingctx, arr, index):
    """Ask for the cache line holding arr.flat[index] (a hint: no fault, no effect on any
    value)."""
    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        read, keep_in_every_level, data = (ir.Constant(i32, v) for v in (0, 3, 1))
        builder.call(fn, [builder.bitcast(ptr, i8p), read, keep_in_every_level, data])
        return context.get_dummy_value()
    return types.none(arr, index), codegen


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
_TWO = _F(2.0)
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
def _ring_at(at, span):
    """Position `at` (>= 0) wrapped into a ring of `span` rows. A tap is at most one lap
    past the end, so this is one comparison where `%` would be a division in the loop."""
    while at >= span:
        at -= span
    return at


@njit(inline="always", **_JIT)
def _tanh_ratio(x):
    """Eigen's rational float tanh, |error| < 4e-7, as (numerator, denominator > 0)."""
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
    return x * p, q


@njit(inline="always", **_JIT)
def _gated(f, g):
    """tanh(f) * sigmoid(g), with sigmoid(g) = (1 + tanh(g / 2)) / 2, over one division:
    pf / qf * (qg + pg) / (2 qg). Divisions are the slow part of the gate (~8% of a
    batch-16 step with two)."""
    pf, qf = _tanh_ratio(f)
    pg, qg = _tanh_ratio(_HALF * g)
    return pf * (qg + pg) / (_TWO * qf * qg)


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
def _aligned_zeros(n):
    """float32 zeros, the first element 64-byte aligned."""
    buf = np.zeros(n + LANES, np.float32)
    skip = ((64 - _address(buf) % 64) % 64) // 4
    return buf[skip:skip + n]
