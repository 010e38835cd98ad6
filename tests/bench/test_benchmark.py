"""`wavenet bench --json` runs every available backend side by side and reports ratios."""

from __future__ import annotations

import json

from wavenet_cli.main import main
from wavenet_core.bench.cpu import flops_per_sample, ratio_table, weights_per_sample
from wavenet_core.model.config import CONFIG_A, CONFIG_B


def test_weight_counts_match_the_fused_layout():
    # B: 20 x (128*128 + 192*64) + 128*128 + 256*128
    assert weights_per_sample(CONFIG_B) == 20 * (128 * 128 + 192 * 64) + 128 * 128 + 256 * 128
    assert flops_per_sample(CONFIG_A) == 2 * weights_per_sample(CONFIG_A)


def test_bench_json_has_every_backend_and_ratios(capsys):
    assert main(["bench", "--json", "--configs", "B", "--steps", "64", "--eager-steps", "4",
                 "--naive-samples", "2", "--precisions", "fp32,bf16"]) == 0
    result = json.loads(capsys.readouterr().out)
    backends = {(r["backend"], r["batch"]) for r in result["rows"]}
    assert {("naive", 1), ("torch", 1), ("torch", 16), ("cpu", 1), ("cpu", 16)} <= backends
    assert all(r["samples_per_s"] > 0 for r in result["rows"])
    cpu = {(r["precision"], r["batch"], r["threads"], r["mode"]): r for r in result["rows"]
           if r["backend"] == "cpu"}
    assert set(cpu) == {(p, b, t, m) for p in ("fp32", "bf16") for b, t, m in (
        (1, 1, "one"), (1, 2, "split"), (1, 2, "auto"), (16, 2, "group"))}
    assert set(result["read_gbs"]) == {"L1", "L2", "L3", "DRAM"}
    assert all(v > 0 for v in result["read_gbs"].values())
    # bf16 halves the bytes: its batch-1 bound is at least fp32's, from the same or a
    # nearer cache level; batch 16's bound is compute or 16 rows per weight read.
    assert cpu["bf16", 1, 1, "one"]["bound"] >= cpu["fp32", 1, 1, "one"]["bound"] > 0
    for precision in ("fp32", "bf16"):
        b16 = cpu[precision, 16, 2, "group"]
        assert 0 < b16["bound"] <= b16["compute_bound"]
        assert b16["bound_kind"] == "compute" or b16["bound"] < b16["compute_bound"]
        # group rows are compared with the two threads' FMA peak measured around the call
        assert b16["roof_gflops"] > 0
        assert b16["compute_bound"] == b16["roof_gflops"] * 1e9 / flops_per_sample(CONFIG_B)
    assert all(r["roof_gflops"] == 0 for r in result["rows"] if r["batch"] == 1)
    assert result["configs"]["B"]["compute_bound_1_core"] > 0
    # The compute roof is the higher of the FMA loop and the GEMM, and it is what every
    # compute bound was derived from.
    assert result["gflops_1_thread"] == max(result["fma_peak_gflops"], result["matmul_gflops"])
    assert result["configs"]["B"]["compute_bound_1_core"] == \
        result["gflops_1_thread"] * 1e9 / flops_per_sample(CONFIG_B)
    table = ratio_table(result)
    assert "x naive" in table and len(table.splitlines()) == 2 + len(result["rows"])


def test_team_peak_counts_every_thread():
    from wavenet_core.bench.roofline import team_fma_peak_gflops

    one, two = team_fma_peak_gflops(1), team_fma_peak_gflops(2)
    # two threads do twice the work; on a machine whose cores are shared (or busy) their
    # total can sink towards one thread's rate, never to half of it or below
    assert one > 0 and two > 0.5 * one


def test_r9y9_rows_compare_a_converted_model_with_their_generator():
    import pytest

    pytest.importorskip("wavenet_vocoder")
    from wavenet_core.bench.r9y9 import r9y9_table, run_r9y9_benchmark
    from wavenet_core.generation.precision import NATIVE_FLAGS, native_precisions

    tiny = dict(out_channels=6, layers=4, stacks=2, residual_channels=8, gate_channels=8,
                skip_out_channels=8, kernel_size=3, cin_channels=5,
                upsample_conditional_features=True, upsample_scales=[2, 4], scalar_input=True)
    # a CPU with VNNI but no AVX512-BF16: int8a runs, bf16a is skipped and says why
    flags = frozenset(NATIVE_FLAGS["int8a"])
    assert native_precisions(flags) == ["fp32", "int8", "int8a"]
    result = run_r9y9_benchmark(16, log=lambda msg: None, preset=tiny, flags=flags)
    rows = {(r["backend"], r["precision"], r["batch"], r["mode"]): r for r in result["rows"]}
    assert set(rows) == {("r9y9", "fp32", 1, ""), ("torch", "fp32", 1, ""),
                         ("torch", "fp32", 16, "")} | {
        ("cpu", p, n, m) for p in ("fp32", "bf16", "int8a")
        for n, m in ((1, ""), (16, "group"), (16, "split"))}
    assert result["skipped"] == {"bf16a": "this CPU lacks avx512_bf16"}
    assert all(r["samples_per_s"] > 0 for r in rows.values()) and result["bound"] > 0
    # every cpu row: both bounds, reported against the lower
    for key, r in rows.items():
        if key[0] == "cpu":
            assert r["stream_bound"] > 0 and r["compute_bound"] > 0
            assert r["bound"] == min(r["stream_bound"], r["compute_bound"])
            assert (r["bound_kind"] == "compute") == (r["compute_bound"] < r["stream_bound"])
    # int8a's compute roof is vpdpbusd's loop (4 multiply-adds a lane), not the FMA's
    # (where the CPU really has it: the faked flags do not make the portable path fast)
    if "int8a" in native_precisions():
        one = rows[("cpu", "fp32", 1, "")]["compute_bound"]
        assert rows[("cpu", "int8a", 1, "")]["compute_bound"] > 1.5 * one
    assert rows[("cpu", "int8a", 16, "split")]["roof_gflops"] > 0
    # the rounding against fp32: real (not zero) and small, larger for int8a than bf16
    error = result["output_error"]
    assert set(error) == {"bf16", "bf16a", "int8a"}
    assert 0 < error["bf16"] < error["int8a"] < 0.05 and 0 < error["bf16a"] < 0.02
    table = r9y9_table(result)
    assert "x r9y9" in table and result["cpu"] in table and "split" in table
    assert "skipped bf16a: this CPU lacks avx512_bf16" in table
    assert "best dot format / best of fp32 and bf16" in table and "int8a" in table


def test_excitation_cost_rows_every_variant_with_ratios(capsys):
    """`wavenet bench --excitation`: plain and excitation, each with and without voicing
    shaping, batch 1 and 16, with ratios to the plain model (toy lengths)."""
    assert main(["bench", "--excitation", "--json", "--steps", "32", "--rounds", "2",
                 "--precisions", "bf16"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {(r["variant"], r["batch"]): r for r in result["rows"]}
    assert set(rows) == {(v, b) for v in ("plain", "plain+shaping", "excitation",
                                          "excitation+shaping") for b in (1, 16)}
    assert all(r["samples_per_s"] > 0 and r["samples_per_cpu_s"] > 0 for r in rows.values())
    from wavenet_core.bench.excitation_cost import cost_table

    table = cost_table(result)
    assert result["cpu"] in table and len(table.splitlines()) == 3 + len(rows)


def test_dot_format_rows_use_their_own_instruction_roof(capsys):
    assert main(["bench", "--json", "--configs", "B", "--steps", "64", "--eager-steps", "4",
                 "--naive-samples", "2", "--precisions", "bf16a"]) == 0
    result = json.loads(capsys.readouterr().out)
    peak = result["dot_peak_gops"]["bf16a"]
    assert peak > 0
    rows = {(r["batch"], r["threads"], r["mode"]): r for r in result["rows"]
            if r["backend"] == "cpu"}
    # batch 1: the single-thread vdpbf16ps peak times the threads, not the FMA peak
    assert rows[1, 1, "one"]["compute_bound"] == peak * 1e9 / flops_per_sample(CONFIG_B)
    group = rows[16, 2, "group"]
    assert group["roof_gflops"] > 0
    assert group["compute_bound"] == group["roof_gflops"] * 1e9 / flops_per_sample(CONFIG_B)
    assert all(r["nll_cost"] is None for r in result["rows"])     # random weights: no cost


def test_a_dot_format_without_its_instruction_takes_the_fma_roof():
    """Its portable path multiplies with FMAs; timing its chain of constants there measured
    LLVM's folding (4.9e12 "GOP/s" on an Intel Xeon without AVX512-BF16)."""
    from wavenet_core.bench.roofline import FMA_CHAIN_FLOPS, _chains

    assert _chains("bf16a", frozenset({"avx512f", "avx512_vnni"}))[1] == FMA_CHAIN_FLOPS
    assert _chains("bf16a", frozenset({"avx512_bf16"}))[1] == 2 * FMA_CHAIN_FLOPS
    assert _chains("int8a", frozenset({"avx2"}))[1] == FMA_CHAIN_FLOPS
    assert _chains("int8a", frozenset({"avx512_vnni"}))[1] == 4 * FMA_CHAIN_FLOPS


def test_the_bundled_vocoder_rows_carry_its_recorded_costs():
    from wavenet_core.bench.cpu import _model

    model, costs = _model("V")
    assert model.config.mel_channels and {"bf16", "int8", "bf16a", "int8a"} <= set(costs)


def test_a_split_team_needs_every_shard_in_the_shared_level():
    """r9y9's preset in bf16 split over two threads: 25 MB a thread fits a 32 MB L3 alone,
    but both shards do not, so they stream from DRAM; in group mode both threads read the
    same 25 MB, which L3 holds."""
    from wavenet_core.bench.r9y9 import shared_level
    from wavenet_core.bench.roofline import Level

    mb = 1 << 20
    levels = [Level("L1", 32 << 10, 0, 500.0), Level("L2", mb, 0, 200.0),
              Level("L3", 32 * mb, 0, 100.0), Level("DRAM", 1 << 62, 0, 20.0)]
    assert shared_level(levels, 25 * mb, 1) == "L2+L3"
    assert shared_level(levels, 25 * mb, 2) == "L3+DRAM"
