"""Side-by-side generation speed: every backend and the machine's own limits, one process.

Machines here are shared and noisy, so absolute numbers drift; ratios measured in the same
run do not. For configs A and B (docs/architecture.md section 5) this measures samples/s of naive
recomputation, eager PyTorch queues and the compiled CPU backend in each precision (fp32,
bf16, int8): batch 1 on one core, batch 1 split across two cores, batch 1 on two threads as
the engine runs it (split="auto": once it has timed both ways, the faster), batch 16 on two
threads;
the CUDA graph where a GPU exists. And the limits of this machine for the same model:
- weight-streaming bound (batch 1): read bandwidth of the cache level that holds that
  precision's weights (roofline.py measures L1, L2, L3 and DRAM) / weight bytes per sample;
  split across T cores, each core streams its own slice;
- compute bound: the model's FLOPs per sample against this core's float32 peak, times the
  threads; the peak is the higher of a register-only FMA loop (roofline.fma_peak_gflops) and
  a large single-thread matrix product (on AMD, PyTorch's GEMM reached under half the peak);
- batch 16 on T threads runs in group mode: each thread makes B/T rows per step and reads
  all the weights once per step for them, so its bound is the lower of compute and
  T * B/T * that weight-streaming bound (fp32 weights that overflow L2 make it L3-bound).
  Its compute roof is the FMA loop run on the T threads at once, for as long as the call,
  just before and just after each timed call (`roofline.team_fma_peak_gflops`): on a
  shared virtual machine two vCPUs were worth two cores in some moments and one in
  others, so T x the single-thread peak, measured once at the start, is not what the
  row's call had. The row is the median of GROUP_ROUNDS rounds by that ratio.
Every row is reported as a ratio to its bound, and to the compute bound.
The dot formats bf16a and int8a (docs/cpu-kernel.md) multiply with their own instruction
(vdpbf16ps: 2 multiply-adds a lane, vpdpbusd: 4), so their rows' compute roofs are that
instruction's loop (`roofline.team_fma_peak_gflops(precision=)`, 2 ops per multiply-add),
measured like the FMA roof. Config V is the bundled vocoder (models/vocoder.safetensors, mel
as frames, as the server sends it); its rows carry the held-out NLL cost recorded in the
checkpoint for their precision (`wavenet precision-cost`), the price of that speed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from wavenet_core.audio.lpc import timing_rows
from wavenet_core.bench.roofline import (
    DOT_MACS,
    cpu_model,
    fma_peak_gflops,
    measure_levels,
    stream_bound,
    team_fma_peak_gflops,
)
from wavenet_core.bench.timing import time_generation
from wavenet_core.generation.mel_frames import MelFrames
from wavenet_core.generation.naive import naive_generate
from wavenet_core.generation.precision import native_precisions, recorded_costs
from wavenet_core.generation.torch.backend import TorchBackend
from wavenet_core.model.checkpoint import load_checkpoint
from wavenet_core.model.config import CONFIG_A, CONFIG_B, WaveNetConfig
from wavenet_core.model.wavenet import WaveNet

VOCODER = Path(__file__).resolve().parents[2] / "models" / "vocoder.safetensors"
CONFIGS = {"A": CONFIG_A, "B": CONFIG_B, "V": VOCODER}
# (batch, threads, split policy): one core, one stream split, the engine's choice, group mode
CPU_RUNS = ((1, 1, "always"), (1, 2, "always"), (1, 2, "auto"), (16, 2, "always"))
GROUP_ROUNDS = 5      # group rows: timed calls, each between two team-peak measurements


@dataclass
class Row:
    config: str
    backend: str
    batch: int
    threads: int
    samples_per_s: float          # aggregate
    per_stream: float
    precision: str = "fp32"
    bound: float = 0.0            # the roofline bound this row is compared with
    bound_kind: str = ""          # "L2", "L2+L3", ... (weights) or "compute"
    compute_bound: float = 0.0    # FLOPs-only bound for the same threads
    mode: str = ""                # cpu rows: "one" core, "split", "auto" or "group"
    roof_gflops: float = 0.0      # group rows: the team's FMA peak around the reported call
    nll_cost: float | None = None  # config V: the checkpoint's recorded cost (bits/sample)
    stream_bound: float = 0.0     # r9y9 rows: the weight-streaming bound beside it


def weights_per_sample(c: WaveNetConfig) -> int:
    """Weights read to make one sample: per layer fused gate [2C, 2C] and out [C+S, C]; head."""
    per_layer = 2 * c.residual_channels * 2 * c.residual_channels \
        + (c.residual_channels + c.skip_channels) * c.residual_channels
    return c.num_layers * per_layer + c.skip_channels ** 2 + c.classes * c.skip_channels


def flops_per_sample(c: WaveNetConfig) -> int:
    return 2 * weights_per_sample(c)   # one multiply-add per weight


def matmul_gflops(size: int = 1024, repeats: int = 25) -> float:
    """Single-thread float32 GEMM throughput, the best of many short products: on a noisy
    machine a low estimate would inflate every ratio to the compute bound."""
    with _threads(1):
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b
        best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def run_benchmark(configs=("A", "B"), steps: int = 4000, eager_steps: int = 150,
                  naive_samples: int = 30, precisions=("fp32", "bf16", "int8"),
                  log=print) -> dict:
    """Measure everything; returns {"limits": {...}, "rows": [Row...]} as plain dicts."""
    levels = measure_levels()
    gemm, peak = matmul_gflops(), fma_peak_gflops()
    gflops = max(gemm, peak)
    log(f"machine: {cpu_model()}; single-thread float32 GFLOP/s: FMA peak {peak:.1f}, matmul "
        f"{gemm:.1f}; read " + ", ".join(f"{lv.name} {lv.read_gbs:.0f} GB/s" for lv in levels))
    result = {"cpu": cpu_model(), "gflops_1_thread": gflops, "fma_peak_gflops": peak,
              "matmul_gflops": gemm,
              "read_gbs": {lv.name: lv.read_gbs for lv in levels},
              "cache_bytes": {lv.name: lv.size for lv in levels[:3]}, "configs": {}, "rows": []}
    dots = [p for p in precisions if DOT_MACS.get(p, 1) > 1]
    dot_peaks = {p: fma_peak_gflops(precision=p) for p in dots}
    result["dot_peak_gops"] = dot_peaks
    result["dot_portable"] = [p for p in dots if p not in native_precisions()]
    if dots:
        log("single-thread dot instruction peaks (GOP/s, 2 per multiply-add): "
            + _dot_peaks(result))
    for name in configs:
        model, costs = _model(name)
        config = model.config
        compute = gflops * 1e9 / flops_per_sample(config)
        result["configs"][name] = {"weights_per_sample": weights_per_sample(config),
                                   "compute_bound_1_core": compute,
                                   "nll_cost_bits": costs}
        log(f"config {name}: compute bound {compute:,.0f}/s per core")
        peaks = {p: dot_peaks.get(p, gflops) * 1e9 / flops_per_sample(config)
                 for p in precisions}
        for row in _measure(name, model, steps, eager_steps, naive_samples, precisions,
                            levels, peaks, costs, log):
            result["rows"].append(asdict(row))
    return result


def _model(name: str) -> tuple[WaveNet, dict[str, float]]:
    """Config A or B with random weights (no recorded costs), or the bundled vocoder (V)
    with its recorded NLL costs."""
    if name == "V":
        return load_checkpoint(VOCODER).eval(), recorded_costs(VOCODER)
    torch.manual_seed(0)
    return WaveNet(CONFIGS[name]).eval(), {}


def _mel_frames(model: WaveNet):
    """local_fn for time_generation: random standardised frames as MelFrames (what the
    server's runner sends), or None for a model without mel."""
    m, hop = model.config.mel_channels, model.config.mel.hop_length
    if not m:
        return None
    rng = np.random.default_rng(0)

    def frames(batch: int, steps: int) -> MelFrames:
        count = steps // hop + 2
        return MelFrames(rng.standard_normal((batch, count, m)).astype(np.float32),
                         np.zeros(batch, np.int64), hop, steps)
    return frames


def _measure(name, model, steps, eager_steps, naive_samples, precisions, levels, peaks,
             costs, log):
    compute = peaks.get("fp32", next(iter(peaks.values())))
    local_fn = _mel_frames(model)
    with _threads(1):
        start = time.perf_counter()
        naive_generate(model, naive_samples, seed=0, local=None if local_fn is None else
                       local_fn(1, naive_samples).per_sample()[0],
                       **timing_rows(model.config, naive_samples))
        rate = naive_samples / (time.perf_counter() - start)
    yield _log(Row(name, "naive", 1, 1, rate, rate), log)
    eager = TorchBackend(model)
    for batch, threads in ((1, 1), (16, 2)):
        with _threads(threads):
            t = time_generation(eager, batch, eager_steps, repeats=2, local_fn=None if (
                local_fn is None) else lambda n, k: local_fn(n, k).per_sample())
        yield _log(Row(name, "torch", batch, threads, t.samples_per_s,
                       t.per_stream_samples_per_s, bound=compute * threads,
                       bound_kind="compute", compute_bound=compute * threads), log)
    try:
        from wavenet_core.generation.cpu.backend import CpuBackend
    except ImportError as exc:  # numba missing
        log(f"cpu backend unavailable: {exc}")
        return
    for precision in precisions:
        for batch, threads, split in CPU_RUNS:
            backend = CpuBackend(model, threads=threads, precision=precision, split=split)
            backend.warmup()
            kind, bound = stream_bound(levels, backend.weight_bytes(batch))
            row_compute, roof = peaks[precision] * threads, 0.0
            if batch > 1:                 # group mode: each thread's rows share one read
                rate, roof = _median_round_against_team_peak(backend, batch, steps, threads,
                                                             local_fn)
                row_compute = roof * 1e9 / flops_per_sample(model.config)
                bound *= batch
                if row_compute < bound:
                    bound, kind = row_compute, "compute"
            else:
                # auto spends its first calls timing each mode once: give it calls to settle
                t = time_generation(backend, batch, steps, repeats=8 if split == "auto" else 3,
                                    local_fn=local_fn)
                rate = t.samples_per_s
            mode = "one" if threads == 1 else "group" if batch >= threads else \
                "split" if split == "always" else split
            yield _log(Row(name, "cpu", batch, threads, rate, rate / batch, precision, bound,
                           kind, row_compute, mode, roof, costs.get(precision)), log)
    if torch.cuda.is_available():
        from wavenet_core.generation.torch.cuda_graph import CudaGraphBackend

        backend = CudaGraphBackend(model, "cuda")
        for batch in (1, 256):
            t = time_generation(backend, batch, steps, repeats=3)
            yield _log(Row(name, "cuda-graph", batch, 0, t.samples_per_s,
                           t.per_stream_samples_per_s), log)


def _median_round_against_team_peak(backend, batch, steps, threads, local_fn=None):
    """(samples/s, team GFLOP/s) of the round with the median ratio between the two, over
    GROUP_ROUNDS rounds of: team peak, one timed call, team peak. Each peak is one window
    as long as the call, so both are rates sustained over the same time (short windows
    catch the fastest moments, and their best would be a roof no sustained call has); the
    higher of the two is the round's roof, so a slow moment cannot lower it. The roof is the
    loop of the instruction the backend's precision multiplies with."""
    precision = getattr(backend, "precision", "fp32")
    seconds = time_generation(backend, batch, steps, repeats=1, local_fn=local_fn).best_seconds
    rounds = []
    for _ in range(GROUP_ROUNDS):
        before = team_fma_peak_gflops(threads, seconds, repeats=1, precision=precision)
        timing = time_generation(backend, batch, steps, repeats=1, local_fn=local_fn)
        after = team_fma_peak_gflops(threads, seconds, repeats=1, precision=precision)
        roof = max(before, after)
        rounds.append((timing.samples_per_s / roof, timing.samples_per_s, roof))
        seconds = timing.best_seconds
    rounds.sort()
    _, rate, roof = rounds[len(rounds) // 2]
    return rate, roof


def _dot_peaks(result: dict) -> str:
    """The dot formats' roofs; one without its instruction here runs its portable path,
    whose roof is the FMA loop (roofline._chains)."""
    portable = result.get("dot_portable", ())
    return ", ".join(f"{p} {v:.1f}" + (" (not native here: portable path, FMA roof)"
                                       if p in portable else "")
                     for p, v in result.get("dot_peak_gops", {}).items())


def ratio_table(result: dict) -> str:
    """Every row as samples/s, as ratios to naive and eager torch (same batch), and as a
    fraction of its roofline bound (the cache level holding its weights, or compute) and of
    the compute bound alone (its own instruction's roof), with its recorded NLL cost."""
    peaks = _dot_peaks(result)
    lines = [f"cpu: {result.get('cpu', '?')}; single-thread peaks: FMA "
             f"{result.get('fma_peak_gflops', 0):.1f} GFLOP/s" + (
                 f", dot {peaks} GOP/s" if peaks else ""),
             f"{'cfg':3} {'backend':10} {'prec':5} {'batch':>5} {'thr':>3} {'mode':5} "
             f"{'samples/s':>11} "
             f"{'per stream':>10} {'x naive':>8} {'x torch':>8} {'bound':>11} {'of':>7} "
             f"{'%bound':>6} {'%comp':>6} {'NLL cost':>9}"]
    rows = result["rows"]
    for r in rows:
        naive = _find(rows, r["config"], "naive", 1)
        eager = _find(rows, r["config"], "torch", r["batch"])
        bound = r.get("bound") or 0.0
        share = f"{100 * r['samples_per_s'] / bound:5.0f}%" if bound else f"{'':6}"
        comp = r.get("compute_bound") or 0.0
        of_compute = f"{100 * r['samples_per_s'] / comp:5.0f}%" if comp else f"{'':6}"
        lines.append(
            f"{r['config']:3} {r['backend']:10} {r.get('precision', 'fp32'):5} {r['batch']:5d} "
            f"{r['threads']:3d} {r.get('mode', ''):5} {r['samples_per_s']:11,.0f} "
            f"{r['per_stream']:10,.0f} "
            f"{r['samples_per_s'] / naive:8.0f} "
            f"{(r['samples_per_s'] / eager) if eager else float('nan'):8.1f} "
            f"{bound:11,.0f} {r.get('bound_kind', ''):>7} {share} {of_compute} "
            + (f"{r['nll_cost']:+9.4f}" if r.get("nll_cost") is not None else ""))
    return "\n".join(lines)


def _find(rows, config, backend, batch):
    for r in rows:
        if (r["config"], r["backend"], r["batch"]) == (config, backend, batch):
            return r["samples_per_s"]
    return None


def _log(row: Row, log) -> Row:
    log(f"  {row.config} {row.backend:10} {row.precision:5} batch {row.batch:3d} "
        f"threads {row.threads} {row.mode:5}: {row.samples_per_s:,.0f} samples/s"
        + (f" (team peak {row.roof_gflops:.1f} G{'OP' if DOT_MACS[row.precision] > 1 else 'FLOP'}"
           f"/s)" if row.roof_gflops else ""))
    return row


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class _threads:
    """Temporarily set torch's intra-op thread count."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)
