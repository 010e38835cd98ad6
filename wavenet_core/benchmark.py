"""Side-by-side generation speed: every backend and the machine's own limits, one process.

Machines here are shared and noisy, so absolute numbers drift; ratios measured in the same
run do not. For configs A and B (DESIGN.md section 8) this measures samples/s of:
naive recomputation, eager PyTorch queues, the compiled CPU backend (batch 1 on 1 thread,
batch 16 on 2 threads) and, where a GPU exists, the CUDA graph (batch 1 and 256); and two
limits of this machine for the same model:
- compute bound: the model's FLOPs per sample against a large single-thread float32
  matrix product's GFLOP/s;
- weight-streaming bound (batch 1): how often one thread can read an array as large as
  the model's per-sample weights (every weight must be read once per sample).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from wavenet_core.config import CONFIG_A, CONFIG_B, WaveNetConfig
from wavenet_core.generation.naive import naive_generate
from wavenet_core.generation.timing import time_generation
from wavenet_core.generation.torch_backend import TorchBackend
from wavenet_core.model import WaveNet

CONFIGS = {"A": CONFIG_A, "B": CONFIG_B}


@dataclass
class Row:
    config: str
    backend: str
    batch: int
    threads: int
    samples_per_s: float          # aggregate
    per_stream: float


def weights_per_sample(c: WaveNetConfig) -> int:
    """Weights read to make one sample: per layer fused gate [2C, 2C] and out [C+S, C]; head."""
    per_layer = 2 * c.residual_channels * 2 * c.residual_channels \
        + (c.residual_channels + c.skip_channels) * c.residual_channels
    return c.num_layers * per_layer + c.skip_channels ** 2 + c.classes * c.skip_channels


def flops_per_sample(c: WaveNetConfig) -> int:
    return 2 * weights_per_sample(c)   # one multiply-add per weight


def matmul_gflops(size: int = 1024, repeats: int = 5) -> float:
    """Single-thread float32 GEMM throughput."""
    with _threads(1):
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b
        best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def weight_stream_rate(c: WaveNetConfig, repeats: int = 300) -> float:
    """Passes per second reading an array of the model's per-sample weights (1 thread).

    A vectorized read-and-sum in numba: the fastest any batch-1 kernel can touch every
    weight once per sample from wherever that working set lives (L2, L3 or DRAM).
    """
    import numba
    import numpy as np

    @numba.njit(fastmath=True)
    def read_passes(a, reps):
        total = np.float32(0)
        for _ in range(reps):
            acc = np.float32(0)
            for i in range(a.size):
                acc += a[i]
            total += acc
        return total

    weights = np.random.default_rng(0).random(weights_per_sample(c), dtype=np.float32)
    read_passes(weights, 2)
    start = time.perf_counter()
    read_passes(weights, repeats)
    return repeats / (time.perf_counter() - start)


def run_benchmark(configs=("A", "B"), steps: int = 4000, eager_steps: int = 150,
                  naive_samples: int = 30, log=print) -> dict:
    """Measure everything; returns {"limits": {...}, "rows": [Row...]} as plain dicts."""
    gflops = matmul_gflops()
    log(f"machine: single-thread float32 matmul {gflops:.1f} GFLOP/s")
    result = {"gflops_1_thread": gflops, "configs": {}, "rows": []}
    for name in configs:
        config = CONFIGS[name]
        torch.manual_seed(0)
        model = WaveNet(config).eval()
        stream = weight_stream_rate(config)
        compute = gflops * 1e9 / flops_per_sample(config)
        result["configs"][name] = {"weights_per_sample": weights_per_sample(config),
                                   "weight_stream_bound": stream, "compute_bound_1_core": compute}
        log(f"config {name}: weight-streaming bound {stream:,.0f}/s, "
            f"compute bound {compute:,.0f}/s per core")
        for row in _measure(name, model, steps, eager_steps, naive_samples, log):
            result["rows"].append(asdict(row))
    return result


def _measure(name, model, steps, eager_steps, naive_samples, log):
    with _threads(1):
        start = time.perf_counter()
        naive_generate(model, naive_samples, seed=0)
        rate = naive_samples / (time.perf_counter() - start)
    yield _log(Row(name, "naive", 1, 1, rate, rate), log)
    eager = TorchBackend(model)
    for batch, threads in ((1, 1), (16, 2)):
        with _threads(threads):
            t = time_generation(eager, batch, eager_steps, repeats=2)
        yield _log(Row(name, "torch", batch, threads, t.samples_per_s, t.per_stream_samples_per_s),
                   log)
    try:
        from wavenet_core.generation.cpu_backend import CpuBackend
    except ImportError as exc:  # numba missing
        log(f"cpu backend unavailable: {exc}")
    else:
        for batch, threads in ((1, 1), (16, 2)):
            backend = CpuBackend(model, threads=threads)
            backend.warmup()
            t = time_generation(backend, batch, steps, repeats=3)
            yield _log(Row(name, "cpu", batch, threads, t.samples_per_s,
                           t.per_stream_samples_per_s), log)
    if torch.cuda.is_available():
        from wavenet_core.generation.cuda_graph_backend import CudaGraphBackend

        backend = CudaGraphBackend(model, "cuda")
        for batch in (1, 256):
            t = time_generation(backend, batch, steps, repeats=3)
            yield _log(Row(name, "cuda-graph", batch, 0, t.samples_per_s,
                           t.per_stream_samples_per_s), log)


def ratio_table(result: dict) -> str:
    """Every row as samples/s and as ratios to naive, eager torch (same batch) and limits."""
    lines = [f"{'cfg':3} {'backend':10} {'batch':>5} {'thr':>3} {'samples/s':>11} "
             f"{'per stream':>10} {'x naive':>8} {'x torch':>8} {'%stream':>8} {'%compute':>8}"]
    rows = result["rows"]
    for r in rows:
        limits = result["configs"][r["config"]]
        naive = _find(rows, r["config"], "naive", 1)
        eager = _find(rows, r["config"], "torch", r["batch"])
        cores = max(1, r["threads"])
        stream = (f"{100 * r['samples_per_s'] / limits['weight_stream_bound']:7.0f}%"
                  if r["batch"] == 1 else f"{'':8}")
        compute = 100 * r["samples_per_s"] / (limits["compute_bound_1_core"] * cores)
        lines.append(
            f"{r['config']:3} {r['backend']:10} {r['batch']:5d} {r['threads']:3d} "
            f"{r['samples_per_s']:11,.0f} {r['per_stream']:10,.0f} "
            f"{r['samples_per_s'] / naive:8.0f} "
            f"{(r['samples_per_s'] / eager) if eager else float('nan'):8.1f} "
            f"{stream} {compute:7.0f}%")
    return "\n".join(lines)


def _find(rows, config, backend, batch):
    for r in rows:
        if (r["config"], r["backend"], r["batch"]) == (config, backend, batch):
            return r["samples_per_s"]
    return None


def _log(row: Row, log) -> Row:
    log(f"  {row.config} {row.backend:10} batch {row.batch:3d} threads {row.threads}: "
        f"{row.samples_per_s:,.0f} samples/s")
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
