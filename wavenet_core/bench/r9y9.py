"""`wavenet bench --r9y9`: a converted r9y9-sized vocoder on our backends beside r9y9's own
`incremental_forward`, in one process, so the ratios hold on a shared, noisy machine.

The model is their mixture-of-logistics LJSpeech preset (24 layers, 4 stacks, 512 residual
and gate channels, 256 skip, kernel 3, 80 mels upsampled x256) with random weights, built
with their code, saved as a .pth and converted by `convert_r9y9` like a user's file.
Rows: theirs at batch 1 (their generator makes one stream) on one thread, weight norm
removed first as their synthesis script does; ours on the torch backend and the compiled
cpu one (fp32 and bf16 weights) at batch 1 (one thread) and 16 (two threads), the cpu
backend at batch 16 in both modes: group (each thread all the weights for half the rows,
what it ran before issue 30) and split (each thread its share of the weights for all
rows), each timed in turn, ROUNDS times, the median reported. The bound is the
weight-streaming bound (roofline.py) for the bytes a thread reads per step: float32, or
the cpu backend's own in its format; at batch 16 B x that, from the level that holds
them, a shared one (L3, DRAM) at the team's bandwidth (both threads reading at once:
`team_read_bandwidth`), and at most the team's FMA peak over the model's FLOPs.
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
    cpu_model,
    measure_levels,
    stream_bound,
    team_fma_peak_gflops,
    team_read_bandwidth,
)
from wavenet_core.bench.timing import time_generation
from wavenet_core.generation.registry import make_backend
from wavenet_core.interop.r9y9 import convert_r9y9

NAME = "r9y9-MoL"
ROUNDS = 3            # batch-16 cpu rows: group and split timed in turn, the median of each


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


def run_r9y9_benchmark(steps: int = 256, log=print, preset: dict | None = None) -> dict:
    """Time theirs and ours; returns {"cpu", "bound", "rows": [...]} as plain dicts.
    `preset` (their WaveNet arguments) replaces the LJSpeech one (the tests use a tiny one)."""
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
    rows = []
    theirs.make_generation_fast_()       # as their synthesis.py does before generating
    with _threads(1), torch.no_grad():
        theirs.incremental_forward(c=frames[:, :, :1], T=hop, log_scale_min=config.log_scale_min)
        start = time.perf_counter()
        theirs.incremental_forward(c=frames, T=steps, log_scale_min=config.log_scale_min)
        rate = steps / (time.perf_counter() - start)
    rows.append(_log(Row(NAME, "r9y9", 1, 1, rate, rate, bound=bound, bound_kind=kind), log))
    rows_local = ours.upsampler(frames).transpose(1, 2).detach()
    local_fn = lambda batch, n: rows_local[:, :n].expand(batch, -1, -1)  # noqa: E731
    ours_steps = min(steps, 128)
    for name, precision in (("torch", "fp32"), ("cpu", "fp32"), ("cpu", "bf16")):
        for batch, threads in ((1, 1), (16, 2)):
            try:
                backend = make_backend(ours, name, "cpu", precision, threads=threads)
            except ImportError:                 # no numba: no cpu rows
                break
            if name == "cpu" and batch > 1:
                rows += _team_rows(ours, precision, batch, threads, ours_steps, local_fn,
                                   levels, nbytes, log)
                continue
            with _threads(threads):
                t = time_generation(backend, batch, ours_steps, repeats=2,
                                    warmup_steps=4, local_fn=local_fn)
            own_kind, own = ((kind, bound) if name == "torch" else
                             stream_bound(levels, backend.weight_bytes(1)))
            rows.append(_log(Row(NAME, name, batch, threads, t.samples_per_s,
                                 t.per_stream_samples_per_s, precision,
                                 bound=own if batch == 1 else 0.0,
                                 bound_kind=own_kind if batch == 1 else ""), log))
    return {"cpu": cpu_model(), "bound": bound, "bound_kind": kind, "weight_bytes": nbytes,
            "rows": [r.__dict__ for r in rows]}


def _team_rows(model, precision, batch, threads, steps, local_fn, levels, nbytes, log):
    """The cpu backend at `batch` on `threads` threads in group and in split mode, timed in
    turn ROUNDS times (the median of each), each against its bound (module docstring)."""
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
    compute = team_fma_peak_gflops(threads, seconds, repeats=1) * 1e9 / (2 * nbytes / 4)
    rows = []
    for mode, backend in modes.items():
        per_thread = backend.weight_bytes(batch)
        kind, bound = stream_bound(levels, per_thread)
        if kind != levels[0].name and kind != levels[1].name:   # a shared level: the team's
            probe = next(lv.probe_bytes for lv in levels if kind.endswith(lv.name))
            bound = team_read_bandwidth(probe, threads) / threads * 1e9 / per_thread
        bound *= batch
        if compute < bound:
            kind, bound = "compute", compute
        rate = statistics.median(rates[mode])
        rows.append(_log(Row(NAME, "cpu", batch, threads, rate, rate / batch, precision,
                             bound=bound, bound_kind=kind, mode=mode), log))
    return rows


def r9y9_table(result: dict) -> str:
    """Every row as samples/s and as a ratio to r9y9's incremental_forward."""
    theirs = next(r["samples_per_s"] for r in result["rows"] if r["backend"] == "r9y9")
    lines = [f"cpu: {result['cpu']}",
             f"{'model':9} {'backend':8} {'prec':4} {'batch':>5} {'thr':>3} {'mode':5} "
             f"{'samples/s':>10} {'per stream':>10} {'x r9y9':>7} {'bound':>9} {'of':>7} "
             f"{'%bound':>6}"]
    for r in result["rows"]:
        share = f"{100 * r['samples_per_s'] / r['bound']:5.0f}%" if r["bound"] else ""
        lines.append(f"{r['config']:9} {r['backend']:8} {r['precision']:4} {r['batch']:5d} "
                     f"{r['threads']:3d} {r.get('mode', ''):5} "
                     f"{r['samples_per_s']:10,.0f} {r['per_stream']:10,.0f} "
                     f"{r['samples_per_s'] / theirs:7.2f} {r['bound']:9,.0f} "
                     f"{r['bound_kind']:>7} {share:>6}")
    return "\n".join(lines)
