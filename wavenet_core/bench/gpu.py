"""GPU generation speed in one run: the triton kernel (fp32, fp16) beside the CUDA graph.

For configs A and B (DESIGN.md section 8), batches 1, 16, 64, 256 and 1024: samples/s per
stream and in aggregate, whether each stream keeps real time (the model's sample rate),
and the most streams served at real time per (config, backend, precision). Two limits of
the same GPU are measured in the same run, and every figure is also given as a ratio:
- copy bandwidth (device-to-device copy of a large buffer, bytes read + written per s),
  against the weight bytes one kernel program reads per sample (the kernel re-reads its
  layer weights at every sample: programs x samples/s x weight bytes);
- bf16 matrix throughput (a large bf16 GEMM), against the model's FLOPs (2 per weight per
  sample, `cpu.flops_per_sample`) times the aggregate samples/s.

Import-safe without CUDA or Triton; `run_gpu_benchmark(device="cpu", ...)` runs the same
code through the Triton interpreter with tiny sizes (that is how the tests exercise it).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from wavenet_core.bench.cpu import CONFIGS, flops_per_sample
from wavenet_core.bench.timing import time_generation
from wavenet_core.model.wavenet import WaveNet

BATCHES = (1, 16, 64, 256, 1024)


@dataclass
class GpuRow:
    config: str
    backend: str
    precision: str
    batch: int
    samples_per_s: float          # aggregate
    per_stream: float
    real_time: bool               # per_stream >= sample rate
    bandwidth_fraction: float     # weight bytes streamed / copy bandwidth
    compute_fraction: float       # model FLOP/s / bf16 GEMM FLOP/s


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best(fn, device, repeats: int) -> float:
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def copy_bandwidth(device: torch.device, mib: int = 1024, repeats: int = 5) -> float:
    """Bytes/s of a device-to-device copy (read + write counted)."""
    src = torch.empty(mib << 18, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    return 2 * src.numel() * 4 / _best(lambda: dst.copy_(src), device, repeats)


def bf16_matmul_flops(device: torch.device, size: int = 8192, repeats: int = 5) -> float:
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    return 2 * size ** 3 / _best(lambda: a @ b, device, repeats)


def kernel_weight_bytes(backend) -> int:
    """Weight bytes one program of the triton kernel reads per sample (padded layout)."""
    mats = (backend.wf, backend.wg, backend.wres, backend.wskip, backend.wh, backend.wl)
    return sum(m.numel() * m.element_size() for m in mats if m is not backend._dummy)


def make_row(config_name, backend_name, precision, batch, samples_per_s, sample_rate,
             weight_bytes, programs, flops, limits) -> GpuRow:
    """One table row from a timing and the limits (pure: tested on the CPU)."""
    per_stream = samples_per_s / batch
    streamed = programs * per_stream * weight_bytes
    return GpuRow(config_name, backend_name, precision, batch, samples_per_s, per_stream,
                  per_stream >= sample_rate, streamed / limits["copy_bytes_per_s"],
                  flops * samples_per_s / limits["bf16_flops"])


def real_time_streams(rows: list[GpuRow]) -> dict[str, int]:
    """Most streams (largest batch) kept at real time, per config/backend/precision."""
    out: dict[str, int] = {}
    for r in rows:
        key = f"{r.config}/{r.backend}/{r.precision}"
        out[key] = max(out.get(key, 0), r.batch if r.real_time else 0)
    return out


def gpu_table(result: dict) -> str:
    limits = result["limits"]
    lines = [f"GPU: {result.get('device_name', '?')}; copy {limits['copy_bytes_per_s'] / 1e9:.0f} "
             f"GB/s, bf16 GEMM {limits['bf16_flops'] / 1e12:.1f} TFLOP/s",
             "| config | backend | precision | batch | per stream (samples/s) | x real time "
             "| aggregate (samples/s) | x copy bandwidth | x bf16 peak |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        rate = CONFIGS[r["config"]].sample_rate if r["config"] in CONFIGS else 16000
        lines.append(f"| {r['config']} | {r['backend']} | {r['precision']} | {r['batch']} | "
                     f"{r['per_stream']:,.0f} | {r['per_stream'] / rate:.2f} | "
                     f"{r['samples_per_s']:,.0f} | {r['bandwidth_fraction']:.3f} | "
                     f"{r['compute_fraction']:.4f} |")
    lines.append("")
    lines.append("streams at real time: " + ", ".join(
        f"{k} {v}" for k, v in result["real_time_streams"].items()))
    return "\n".join(lines)


def run_gpu_benchmark(configs=("A", "B"), batches=BATCHES, precisions=("fp32", "fp16"),
                      steps: int = 2048, graph_steps: int = 256, repeats: int = 3,
                      device: str = "cuda", cuda_graph: bool = True, model_configs=None,
                      limit_sizes=(1024, 8192), log=print) -> dict:
    """Time every (config, precision, batch) on the triton backend, and the CUDA graph
    (fp32) beside it; `model_configs` overrides CONFIGS (tests use tiny ones)."""
    from wavenet_core.generation.triton.backend import TritonBackend

    dev = torch.device(device)
    table = model_configs or CONFIGS
    limits = {"copy_bytes_per_s": copy_bandwidth(dev, limit_sizes[0]),
              "bf16_flops": bf16_matmul_flops(dev, limit_sizes[1])}
    log(f"limits: copy {limits['copy_bytes_per_s'] / 1e9:.1f} GB/s, "
        f"bf16 {limits['bf16_flops'] / 1e12:.2f} TFLOP/s")
    rows: list[GpuRow] = []
    for name in configs:
        config = table[name]
        torch.manual_seed(0)
        model = WaveNet(config).eval()
        flops = flops_per_sample(config)
        for precision in precisions:
            backend = TritonBackend(model, dev, precision=precision)
            weight_bytes = kernel_weight_bytes(backend)
            for batch in batches:
                t = time_generation(backend, batch, steps, repeats)
                programs = -(-batch // backend.block)
                rows.append(make_row(name, "triton", precision, batch, t.samples_per_s,
                                     config.sample_rate, weight_bytes, programs, flops,
                                     limits))
                log(f"{name} triton {precision} batch {batch}: "
                    f"{rows[-1].per_stream:,.0f} samples/s per stream")
        if cuda_graph and dev.type == "cuda":
            from wavenet_core.generation.torch.cuda_graph import CudaGraphBackend

            graph = CudaGraphBackend(model, dev, max_chunk=graph_steps)
            fp32_bytes = flops // 2 * 4
            for batch in batches:
                t = time_generation(graph, batch, graph_steps, repeats)
                rows.append(make_row(name, "cuda-graph", "fp32", batch, t.samples_per_s,
                                     config.sample_rate, fp32_bytes, 1, flops, limits))
                log(f"{name} cuda-graph fp32 batch {batch}: "
                    f"{rows[-1].per_stream:,.0f} samples/s per stream")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu (interpreter)"
    return {"device_name": name, "limits": limits, "rows": [asdict(r) for r in rows],
            "real_time_streams": real_time_streams(rows), "steps": steps}
