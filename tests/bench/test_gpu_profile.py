"""The static GPU profile (no GPU): the SASS reader and latency model on a hand-written
listing, and the real kernel's sm_90 builds, configs A and B, fp16 and fp32, as the JIT
builds them: no spills, shared memory within an SM, the counts recorded in
docs/triton-kernel.md ("Speed, estimated")."""

from __future__ import annotations

import functools
import importlib.util

import pytest

from wavenet_core.bench import gpu_model, sass
from wavenet_core.generation.triton.shape import fused_gate, kernel_shape, layer_stages
from wavenet_core.model.config import CONFIG_A, CONFIG_B

LISTING = """
        /*0000*/                   S2R R0, SR_TID.X ;
        /*0010*/                   LDG.E R2, desc[UR4][R4.64] ;
        /*0020*/                   LDG.E.128 R8, desc[UR4][R2.64] ;
        /*0030*/                   LDG.E R3, desc[UR4][R6.64] ;
        /*0040*/               @P0 BRA 0x70 ;
        /*0050*/                   IMAD R12, R8, R11, RZ ;
        /*0060*/                   BRA 0x90 ;
        /*0070*/                   CALL.REL.NOINC 0x200 ;
        /*0080*/                   IMAD R12, RZ, RZ, RZ ;
        /*0090*/                   BAR.SYNC.DEFER_BLOCKING 0x0 ;
        /*00a0*/                   STG.E desc[UR4][R4.64], R12 ;
        /*00b0*/                   HMMA.16816.F32 R16, R20, R24, R16 ;
        /*00b8*/                   HMMA.1688.F32.TF32 R16, R20, R24, R16 ;
        /*00c0*/               @P1 BRA 0x10 ;
        /*00d0*/                   LDL R30, [R1+0x8] ;
        /*00e0*/               @P2 BRA 0x0 ;
        /*00f0*/                   EXIT ;
"""


def test_sass_reader_and_issue_model_on_a_listing():
    code = sass.parse(LISTING)
    assert len(code) == 17
    assert code[2].dests == ("R8", "R9", "R10", "R11") and code[2].sources == ("UR4", "R2", "R3")
    assert code[11].dests == ("R16", "R17", "R18", "R19") and len(code[11].sources) == 10
    assert [sass.mma_macs(i) for i in code[10:13]] == [0, 64, 32]
    assert sass.loops(code) == [(0x0, 0xe0), (0x10, 0xc0)]
    layers = sass.layer_loop(code)
    assert layers == (0x10, 0xc0) and sass.sample_loop(code, layers) == (0x0, 0xe0)
    path = sass.walk(code, layers)          # falls through 0x40, jumps 0x60 -> 0x90
    assert [i.address for i in path] == [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x90, 0xa0, 0xb0,
                                         0xb8]
    c = sass.counts(path)
    assert (c["global_loads"], c["global_load_bytes"], c["barriers"], c["mma"]) == (3, 24, 1, 2)
    assert (c["mma_macs"], c["mma_tf32"]) == (96, 1)
    rest = sass.counts(sass.walk(code, (0x0, 0xe0), skip=layers))
    assert (rest["instructions"], rest["local_loads"]) == (2, 1)
    lat = gpu_model.LATENCIES["fast"]
    # the second load waits for the first (its address), the third does not: the IMAD on
    # the second's result issues after two round trips (cycle 1 + 2 x L2), then the
    # branch, the barrier (+ its cost), the store and the mma, one cycle each; the TF32
    # mma waits for the first's result (its accumulator): one mma latency
    expected = 1 + 2 * lat["global_load"] + 1 + 1 + lat["barrier"] + 1 + 1 + lat["mma"]
    assert gpu_model.issue_cycles(path, lat) == expected
    # twice: the second pass's first load waits for nothing in flight from the first
    assert gpu_model.issue_cycles(path, lat, 2) == 2 * expected


ASYNC_LISTING = """
        /*0000*/                   S2R R0, SR_TID.X ;
        /*0010*/                   LDGSTS.E.BYPASS.128 [R2], desc[UR4][R4.64] ;
        /*0020*/                   LDGDEPBAR ;
        /*0030*/                   LDGSTS.E.BYPASS.128 [R2+0x10], desc[UR4][R6.64] ;
        /*0040*/                   LDGDEPBAR ;
        /*0050*/                   DEPBAR.LE SB0, 0x1 ;
        /*0060*/                   FFMA R8, R9, R10, R8 ;
        /*0070*/               @P0 BRA 0x10 ;
        /*0080*/               @P1 BRA 0x0 ;
        /*0090*/                   EXIT ;
"""


def test_async_copies_and_an_inner_loops_trips():
    """An async copy (LDGSTS) arrives after an L2 latency; DEPBAR.LE SB0, 1 waits for all
    but the newest group; an inner loop named in `trips` is walked that many times."""
    code = sass.parse(ASYNC_LISTING)
    assert code[5].groups == 1 and code[2].groups is None
    outer, inner = (0x0, 0x80), (0x10, 0x70)
    assert sass.layer_loop(code) == inner and sass.children(code, outer) == [inner]
    path = sass.walk(code, outer, trips={inner: 3})
    assert len(path) == 1 + 3 * 7
    c = sass.counts(path)
    assert (c["global_loads"], c["global_load_bytes"], c["ffma"]) == (6, 96, 3)
    assert c["async_copies"] == 6
    lat = gpu_model.LATENCIES["fast"]
    once = sass.walk(code, inner) + [code[7]]
    # the first copy issues at cycle 1 and arrives at 1 + L2; DEPBAR (cycle 5) waits for
    # it, not for the second; the FFMA and the branch follow, one cycle each
    assert gpu_model.issue_cycles(once, lat) == 1 + lat["global_load"] + 2


def test_estimates_follow_the_counts():
    profile = {"num_warps": 4, "registers": 128, "shared_bytes": 60 * 1024, "block": 16,
               "cycles_per_sample": {"slow": 100_000.0, "fast": 50_000.0},
               "per_sample": {"instructions": 10_000, "mma": 100, "global_load_bytes": 2000}}
    device = gpu_model.Device("test", sms=10, clock_ghz=(1.0, 2.0), l2_bytes_per_s=1e12)
    assert gpu_model.programs_per_sm(profile, device) == 3        # shared memory: 3
    e = gpu_model.estimate(profile, device)
    assert e["one_stream_samples_per_s"] == [10_000.0, 40_000.0]
    assert e["real_time_streams"][0] == 0                          # slow: below real time
    # fast: 2 programs per SM halve the rate to 20,000 (issue: 2 x 10,000 cycles < 50,000
    # latency, so no); L2: 1e12 / (n * 256,000 B) >= 16,000 -> n <= 244; occupancy 30
    assert e["real_time_streams"][1] == 30 * 16 and e["streams_limited_by"][1] == "occupancy"


@functools.lru_cache(maxsize=2)
def _profiles(dots: str | None = None) -> tuple:
    from wavenet_core.bench.gpu_profile import Unavailable, profiles

    try:
        if dots:
            return tuple(profiles(configs=("B",), precisions=("fp32",), dots=dots))
        return tuple(profiles())
    except Unavailable as exc:
        return (str(exc),)


def _walked_macs(p: dict) -> float:
    """Multiply-adds per thread of one pass of the layer loop as walked: an FFMA one, a
    tensor-core instruction its shape's over the dots' passes (3 for tf32x3)."""
    return p["per_layer"]["ffma"] + p["per_layer"]["mma_macs"] / p["dot_passes"]


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
@pytest.mark.parametrize("config,precision", [
    ("A", "fp16"), ("B", "fp16"), ("A", "fp32"), ("B", "fp32")])
def test_the_kernels_sm90_build_fits_without_spills(config, precision, capsys):
    found = _profiles()
    if isinstance(found[0], str):
        pytest.skip(f"no ptxas/cuobjdump in this Triton: {found[0]}")
    assert {(p["config"], p["precision"]) for p in found} == {
        (c, q) for c in "AB" for q in ("fp16", "fp32")}
    p = next(p for p in found if (p["config"], p["precision"]) == (config, precision))
    with capsys.disabled():
        print("\n" + gpu_model.model_table([p]))
    assert 0 < p["shared_bytes"] <= 227 * 1024
    assert 0 < p["registers"] <= 255
    config = {"A": CONFIG_A, "B": CONFIG_B}[p["config"]]
    cp, gp, sp, _, _, cb, gb, _ = kernel_shape(config, precision)
    # kernel 2: filter and gate per tap and channel block (one dot for both where fused),
    # residual and skip per z block
    gate_dots = 1 if fused_gate(config, precision) else 2
    assert p["dots_per_layer"] == 2 * gate_dots * (cp // cb) + 2 * (gp // gb)
    # the loops walked their trip counts: the multiply-adds per thread of one layer (an
    # FFMA one, an HMMA.16816 64) are the dots' (16 rows), within the FMAs of tanh/sigmoid.
    # A [16, K] x [K, N] dot gives a thread K x (16 N / threads) of them, at least K x 4
    # on tensor cores (a warp's smallest tile is 16 x 8: with more warps than tiles the
    # warps repeat one) and K x 1 for an FMA dot
    least = 4 if precision == "fp16" else 1
    threads = 32 * p["num_warps"]

    def macs(k: int, n: int) -> float:
        return k * max(least, 16 * n / threads)

    gate = 2 * macs(cp, 2 * gp) if gate_dots == 1 else 4 * macs(cp, gp)
    dots = gate + macs(gp, cp) + macs(gp, sp)
    assert dots <= _walked_macs(p) <= 1.05 * dots
    assert p["per_layer"]["barriers"] > 0 and p["per_layer"]["global_loads"] > 0
    # every weight is read once per sample, so the L2 bytes cover the weights
    assert p["per_sample"]["global_load_bytes"] * 32 * p["num_warps"] > 1_000_000
    for device in gpu_model.DEVICES.values():
        e = gpu_model.estimate(p, device)
        assert 0 < e["one_stream_samples_per_s"][0] <= e["one_stream_samples_per_s"][1]
    # the pipelined layer loop (shape.layer_stages) copies the next layer's operands
    # to shared memory asynchronously while a layer computes
    assert p["layer_stages"] == layer_stages(config, precision, p["num_warps"])
    if p["layer_stages"] > 1:
        assert p["per_layer"]["async_copies"] > 0
    assert p["stack_bytes"] == 0, f"spills {p['stack_bytes']} bytes per thread"
    assert p["per_sample"]["local_loads"] == 0


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_a_tf32x3_build_is_counted_on_the_tensor_cores(capsys):
    """Config B fp32 built with input_precision="tf32x3" (not shipped: estimated slower,
    docs/triton-kernel.md "fp32 on the tensor cores"): every dot is three TF32 MMA dots in
    the TTGIR, every tensor-core instruction of the layer is a TF32 HMMA, no FFMA dot is
    left, and the loops walked their trip counts: the multiply-adds per layer are the
    dots', each counted once though run three times."""
    found = _profiles("tf32x3")
    if isinstance(found[0], str):
        pytest.skip(f"no ptxas/cuobjdump in this Triton: {found[0]}")
    (p,) = found
    with capsys.disabled():
        print("\n" + gpu_model.model_table([p]))
    assert (p["input_precision"], p["dot_passes"]) == ("tf32x3", 3)
    cp, gp, sp, _, _, cb, gb, _ = kernel_shape(CONFIG_B, "fp32")
    assert p["dots_per_layer"] == 3 * (2 * 2 * (cp // cb) + 2 * (gp // gb))
    layer = p["per_layer"]
    assert layer["mma"] == layer["mma_tf32"] > 0 and layer["ffma"] < 16
    threads = 32 * p["num_warps"]

    def macs(k: int, n: int) -> float:      # a warp's 16 x 8 tile at least, as fp16's
        return k * max(4, 16 * n / threads)

    dots = 4 * macs(cp, gp) + macs(gp, cp) + macs(gp, sp)
    assert dots <= _walked_macs(p) <= 1.05 * dots
