"""`wavenet bench --r9y9`: a converted r9y9-sized vocoder on our backends beside r9y9's own
`incremental_forward`, in one process, so the ratios hold on a shared, noisy machine.

The model is their mixture-of-logistics LJSpeech preset (24 layers, 4 stacks, 512 residual
and gate channels, 256 skip, kernel 3, 80 mels upsampled x256) with random weights, built
with their code, saved as a .pth and converted by `convert_r9y9` like a user's file.
Rows: theirs at batch 1 (their generator makes one stream) on one thread, weight norm
removed first as their synthesis script does; ours on the torch backend and the compiled
cpu one at batch 1 (one thread) and 16 (two threads), the cpu backend in each of
CPU_PRECISIONS: fp32 and bf16 weights (float32 FMAs), and the dot formats bf16a and int8a
(vdpbf16ps, vpdpbusd; docs/cpu-kernel.md "Dot formats"), a dot format skipped with the
reason where this CPU lacks its instruction. At batch 16 both modes: group (each thread all
the weights for half the rows, what it ran before issue 30) and split (each thread its
share of the weights for all rows), each timed in turn, ROUNDS times, the median reported.
Each cpu row has two bounds, and is reported against the lower:
- weight streaming (roofline.py) for the bytes a thread reads per step in the backend's
  format; at batch 16 B x that, from the level that holds them, a shared one (L3, DRAM)
  at the team's bandwidth (both threads reading at once: `team_read_bandwidth`);
- compute: the loop of the instruction the format multiplies with (`roofline._chains`:
  the float32 FMA, or the dot instruction, 2 ops per multiply-add) over the model's
  multiply-adds, single-threaded at batch 1, run on the team at batch 16.
Then each non-fp32 precision's rounding on the outputs (rounding.py: the largest |output
difference| against fp32 as a share of the largest output, on the model's own stream):
random weights have no NLL cost to report.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from wavenet_core.bench.cpu import Row, _log, _threads
from wavenet_core.bench.r9y9_models import LJSPEECH_MOL, r9y9_hparams, random_r9y9
from wavenet_core.bench.roofline import (
    DOT_MACS,
    cpu_model,
    fma_peak_gflops,
    measure_levels,
    stream_bound,
    team_fma_peak_gflops,
    team_read_bandwidth,
)
from wavenet_core.bench.rounding import output_error
from wavenet_core.bench.timing import time_generation
from wavenet_core.generation.precision import NATIVE_FLAGS, native_precisions
from wavenet_core.generation.registry import make_backend
from wavenet_core.interop.r9y9 import convert_r9y9

NAME = "r9y9-MoL"
ROUNDS = 3            # batch-16 cpu rows: group and split timed in turn, the median of each
CPU_PRECISIONS = ("fp32", "bf16", "bf16a", "int8a")
TODAY = ("fp32", "bf16")   # issue 30's "today": the formats that multiply with float32 FMAs


def weight_bytes(model) -> int:
    """float32 bytes one sample reads: every weight but the embedding's unused rows and the
    upsampler (run once per frame)."""
    skip = ("upsampler.", "embedding.", "speaker_embedding.")
    return 4 * sum(p.numel() for n, p in model.named_parameters() if not n.startswith(skip))


def converted_r9y9(preset: dict | None = None):
    """(theirs, ours): a random r9y9 model of `preset` (their WaveNet arguments; default
    the LJSpeech one) built with their code, and ours converted from its saved .pth and
    hparams by `convert_r9y9`, like a user's file."""
    theirs = random_r9y9(scale=0.05, **(preset or LJSPEECH_MOL))
    with tempfile.TemporaryDirectory() as tmp:
        pth = Path(tmp) / "r9y9.pth"
        torch.save({"state_dict": theirs.state_dict()}, pth)
        hp = Path(tmp) / "hparams.json"
        hp.write_text(json.dumps(r9y9_hparams(theirs)))
        ours = convert_r9y9(pth, Path(tmp) / "ours.safetensors", hp)
    return theirs, ours


def run_r9y9_benchmark(steps: int = 256, log=print, preset: dict | None = None,
                       flags: frozenset[str] | None = None) -> dict:
    """Time theirs and ours; returns {"cpu", "bound", "rows": [...], "skipped": {precision:
    why}, "output_error": {precision: share}} as plain dicts. `preset` (their WaveNet
    arguments) replaces the LJSpeech one (the tests use a tiny one); `flags` (the CPU's
    feature flags, default this one's) decide which dot formats run."""
    theirs, ours = converted_r9y9(preset)
    config = ours.config
    hop = config.mel.hop_length
    frames = torch.rand(1, config.mel_channels, -(-steps // hop))
    steps = frames.size(2) * hop              # their generator wants whole frames
    nbytes = weight_bytes(ours)
    levels = measure_levels()
    kind, bound = stream_bound(levels, nbytes)
    log(f"machine: {cpu_model()}; {NAME}: {config.num_layers} layers, {nbytes / 1e6:.0f} MB "
        f"fp32 weights per sample, batch-1 bound {bound:,.0f}/s ({kind})")
    native = native_precisions(flags)
    skipped = {p: f"this CPU lacks {' or '.join(NATIVE_FLAGS[p])}" for p in CPU_PRECISIONS
               if DOT_MACS[p] > 1 and p not in native}
    for precision, why in skipped.items():
        log(f"  skipped cpu {precision}: {why}")
    rows = []
    theirs.make_generation_fast_()       # as their synthesis.py does before generating
    with _threads(1), torch.no_grad():
        theirs.incremental_forward(c=frames[:, :, :1], T=hop, log_scale_min=config.log_scale_min)
        start = time.perf_counter()
        theirs.incremental_forward(c=frames, T=steps, log_scale_min=config.log_scale_min)
        rate = steps / (time.perf_counter() - start)
    rows.append(_log(Row(NAME, "r9y9", 1, 1, rate, rate, bound=bound, bound_kind=kind,
                         stream_bound=bound), log))
    rows_local = ours.upsampler(frames).transpose(1, 2).detach()
    local_fn = lambda batch, n: rows_local[:, :n].expand(batch, -1, -1)  # noqa: E731
    ours_steps = min(steps, 128)
    runs = [("torch", "fp32")] + [("cpu", p) for p in CPU_PRECISIONS if p not in skipped]
    for name, precision in runs:
        for batch, threads in ((1, 1), (16, 2)):
            if name == "cpu" and batch > 1:
                rows += _team_rows(ours, precision, batch, threads, ours_steps, local_fn,
                                   levels, nbytes, log)
                continue
            try:
                backend = make_backend(ours, name, "cpu", precision, threads=threads)
            except ImportError:                 # no numba: no cpu rows (batch 1 comes first)
                break
            with _threads(threads):
                t = time_generation(backend, batch, ours_steps, repeats=2,
                                    warmup_steps=4, local_fn=local_fn)
            row = Row(NAME, name, batch, threads, t.samples_per_s,
                      t.per_stream_samples_per_s, precision)
            if name == "torch":
                row.bound, row.bound_kind, row.stream_bound = (
                    (bound, kind, bound) if batch == 1 else (0.0, "", 0.0))
            else:             # batch 1: this format's bytes, its instruction on one thread
                _bound_row(row, *stream_bound(levels, backend.weight_bytes(1)),
                           fma_peak_gflops(precision=precision) * 1e9 / (2 * nbytes / 4))
            rows.append(_log(row, log))
    try:
        error = output_error(ours, [p for p in CPU_PRECISIONS if p != "fp32"], steps,
                             rows_local[:, :steps].numpy())
    except ImportError:                         # no numba: no cpu precisions
        error = {}
    return {"cpu": cpu_model(), "bound": bound, "bound_kind": kind, "weight_bytes": nbytes,
            "rows": [r.__dict__ for r in rows], "skipped": skipped, "output_error": error,
            "error_steps": steps}


def _bound_row(row: Row, kind: str, stream: float, compute: float) -> None:
    """Set the row's two bounds and the lower of them (the one it is reported against)."""
    row.stream_bound, row.compute_bound = stream, compute
    row.bound, row.bound_kind = (compute, "compute") if compute < stream else (stream, kind)


def _team_rows(model, precision, batch, threads, steps, local_fn, levels, nbytes, log):
    """The cpu backend at `batch` on `threads` threads in group and in split mode, timed in
    turn ROUNDS times (the median of each), each against its bounds (module docstring);
    the compute roof is the team's loop of the precision's instruction, for as long as a
    split call took."""
    from wavenet_core.generation.cpu.backend import CpuBackend

    modes = {"group": CpuBackend(model, threads, precision, split="never"),
             "split": CpuBackend(model, threads, precision, split="always", core_cache=0)}
    rates = {mode: [] for mode in modes}
    for _ in range(ROUNDS):
        for mode, backend in modes.items():
            rates[mode].append(time_generation(backend, batch, steps, repeats=1,
                                               warmup_steps=4,
                                               local_fn=local_fn).samples_per_s)
    seconds = batch * steps / statistics.median(rates["split"])
    roof = team_fma_peak_gflops(threads, seconds, repeats=1, precision=precision)
    compute = roof * 1e9 / (2 * nbytes / 4)
    rows = []
    for mode, backend in modes.items():
        per_thread = backend.weight_bytes(batch)
        kind, stream = stream_bound(levels, per_thread)
        if kind != levels[0].name and kind != levels[1].name:   # a shared level: the team's
            kind = shared_level(levels, per_thread, threads if mode == "split" else 1)
            probe = next(lv.probe_bytes for lv in levels if kind.endswith(lv.name))
            stream = team_read_bandwidth(probe, threads) / threads * 1e9 / per_thread
        rate = statistics.median(rates[mode])
        row = Row(NAME, "cpu", batch, threads, rate, rate / batch, precision, mode=mode,
                  roof_gflops=roof)
        _bound_row(row, kind, stream * batch, compute)
        rows.append(_log(row, log))
    return rows


def shared_level(levels, per_thread: int, shards: int) -> str:
    """Where a team's weights stream from when a thread reads `per_thread` bytes a step
    beyond its own L2: a shared level (L3, DRAM) must hold every distinct shard at once,
    `shards` of them (split mode: one per thread; group mode: 1, all read the same), so
    two 25 MB bf16 shards of r9y9's preset come from DRAM past a 32 MB L3."""
    return stream_bound(levels, per_thread * shards)[0]


def r9y9_table(result: dict) -> str:
    """Every row as samples/s, as a ratio to r9y9's incremental_forward and as a share of
    its bound (the lower of weight streaming and compute, both shown); then the skipped
    precisions, the best batch-16 row against today's (TODAY) and each precision's
    rounding."""
    rows = result["rows"]
    theirs = next(r["samples_per_s"] for r in rows if r["backend"] == "r9y9")
    lines = [f"cpu: {result['cpu']}",
             f"{'model':9} {'backend':8} {'prec':5} {'batch':>5} {'thr':>3} {'mode':5} "
             f"{'samples/s':>10} {'per stream':>10} {'x r9y9':>7} {'stream':>9} "
             f"{'compute':>9} {'bound':>9} {'of':>7} {'%bound':>6}"]
    for r in rows:
        share = f"{100 * r['samples_per_s'] / r['bound']:5.0f}%" if r["bound"] else ""
        lines.append(f"{r['config']:9} {r['backend']:8} {r['precision']:5} {r['batch']:5d} "
                     f"{r['threads']:3d} {r.get('mode', ''):5} "
                     f"{r['samples_per_s']:10,.0f} {r['per_stream']:10,.0f} "
                     f"{r['samples_per_s'] / theirs:7.2f} {r.get('stream_bound', 0):9,.0f} "
                     f"{r.get('compute_bound', 0):9,.0f} {r['bound']:9,.0f} "
                     f"{r['bound_kind']:>7} {share:>6}")
    lines += [f"skipped {p}: {why}" for p, why in result.get("skipped", {}).items()]
    team = [r for r in rows if r["backend"] == "cpu" and r["batch"] > 1]
    today = [r for r in team if r["precision"] in TODAY]
    new = [r for r in team if r["precision"] not in TODAY]
    if today and new:
        a, b = (max(group, key=lambda r: r["samples_per_s"]) for group in (new, today))
        lines.append(f"batch {a['batch']}: best dot format / best of {' and '.join(TODAY)}: "
                     f"{a['samples_per_s'] / b['samples_per_s']:.2f} ({a['precision']} "
                     f"{a['mode']} {a['samples_per_s']:,.0f} / {b['precision']} {b['mode']} "
                     f"{b['samples_per_s']:,.0f})")
    if result.get("output_error"):
        lines.append(f"outputs against fp32, max |difference| / max |fp32 output| over "
                     f"{result['error_steps']} teacher-forced steps: " + ", ".join(
                         f"{p} {100 * e:.2f}%" for p, e in result["output_error"].items()))
    return "\n".join(lines)
