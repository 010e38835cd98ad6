"""What the excitation output (docs/excitation.md) and voicing-shaped sampling
(docs/voicing.md) cost at generation: config B with an 80-band mel, on the compiled CPU
backend, plain against excitation, each with and without the shaping, in one process.

Each variant generates through a `GenerationSession`, as the server and `wavenet generate`
do: per call, every stream's mel frames, LPC rows and (temperature, floor) rows for the
chunk, then the kernel. The streams read the mel of a synthetic speech-like signal (vowels
and fricatives in turn, so both kinds of frame occur). The variants take turns call by
call, for `rounds` rounds, so a slow moment of a shared machine hits them all; a row is
the best round by wall time, and by the process's CPU time (all threads: nearly blind to
other processes taking the cores, which on a shared 2-core machine moves wall times by
tens of percent), each with its ratio to the plain model's in the same batch and
precision. Batch 1 runs on one thread, batch 16 on two (group mode: no thread spins).
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import numpy as np
import torch
from scipy.signal import lfilter

from wavenet_core.audio.mel import log_mel
from wavenet_core.bench.roofline import cpu_model
from wavenet_core.generation.conditioning import WholeMel
from wavenet_core.generation.session import GenerationSession
from wavenet_core.model.config import CONFIG_B, WaveNetConfig
from wavenet_core.model.wavenet import WaveNet

VOCODER_B = dataclasses.replace(CONFIG_B, mel_channels=80, mel_mean=-5.0, mel_std=3.0)
SHAPING = dict(voiced_temperature=0.5, voiced_floor=0.002)      # LPCNet's values
VARIANTS = {"plain": {}, "plain+shaping": SHAPING, "excitation": dict(excitation="lpc"),
            "excitation+shaping": dict(excitation="lpc", **SHAPING)}
RUNS = ((1, 1), (16, 2))               # (batch, threads)


def speech_like_audio(seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """Vowels (a 140 Hz pulse train through two formants) and fricatives (high-passed
    noise) in turn, 0.15 s each."""
    n, seg = int(seconds * sample_rate), int(0.15 * sample_rate)
    pulses = np.zeros(n)
    pulses[np.arange(0, n, sample_rate / 140).astype(int)] = 1.0
    for f, r in ((600, 0.97), (1200, 0.95)):
        w = 2 * np.pi * f / sample_rate
        pulses = lfilter([1.0], [1, -2 * r * np.cos(w), r * r], pulses)
    noise = lfilter([1, -2, 1], [1, 1.1, 0.4], np.random.default_rng(0).standard_normal(n))
    vowel = (np.arange(n) // seg) % 2 == 0
    x = np.where(vowel, pulses / np.abs(pulses).max(), 0.3 * noise / np.abs(noise).max())
    return (0.5 * x).astype(np.float32)


def _sessions(config: WaveNetConfig, batch: int, threads: int, precision: str,
              mel: np.ndarray) -> GenerationSession:
    from wavenet_core.generation.cpu.backend import CpuBackend

    torch.manual_seed(0)
    backend = CpuBackend(WaveNet(config).eval(), threads=threads, precision=precision,
                         split="never")
    backend.warmup()
    session = GenerationSession(backend, batch)
    for slot in range(batch):
        session.open(slot, seed=slot, mel=WholeMel(mel, config))
    return session


def _call(session: GenerationSession, steps: int) -> tuple[float, float]:
    """One chunk of `steps` samples for every slot, rows and all -> (wall, CPU) seconds."""
    slots = list(range(session.num_slots))
    cpu, began = time.process_time(), time.perf_counter()
    cond = [session.conditioning(slot, steps) for slot in slots]
    session.generate(slots, steps, cond)
    return time.perf_counter() - began, time.process_time() - cpu


def run_excitation_cost(steps: int = 4000, rounds: int = 7, precisions=("bf16",),
                        log=print) -> dict:
    """Measure every variant x batch x precision; returns {"cpu", "rows": [...]}."""
    seconds = ((rounds + 2) * steps + 64) / VOCODER_B.sample_rate + 0.1
    mel = log_mel(speech_like_audio(seconds), VOCODER_B.sample_rate, VOCODER_B.mel)
    result = {"cpu": cpu_model(), "steps": steps, "rounds": rounds,
              "config": "B + 80-band mel", "shaping": SHAPING, "rows": []}
    log(f"cpu: {result['cpu']}; config B, mel 80, {steps} samples per call per stream")
    for precision in precisions:
        for batch, threads in RUNS:
            sessions = {name: _sessions(dataclasses.replace(VOCODER_B, **change), batch,
                                        threads, precision, mel)
                        for name, change in VARIANTS.items()}
            for session in sessions.values():
                _call(session, 64)                          # first chunk: caches, pools
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in sessions}
            for _ in range(rounds):
                for name, session in sessions.items():
                    times[name].append(_call(session, steps))
            for name, took in times.items():
                wall, cpu = zip(*took)
                row = {"variant": name, "precision": precision, "batch": batch,
                       "threads": threads, "samples_per_s": batch * steps / min(wall),
                       "median_samples_per_s": batch * steps / statistics.median(wall),
                       "samples_per_cpu_s": batch * steps / min(cpu)}
                result["rows"].append(row)
                log(f"  {precision} batch {batch:2d} threads {threads} {name:19}: "
                    f"{row['samples_per_s']:9,.0f} samples/s, "
                    f"{row['samples_per_cpu_s']:9,.0f} per CPU second")
    return result


def cost_table(result: dict) -> str:
    """Each row with its ratios to the plain model in the same precision and batch."""
    lines = [f"cpu: {result['cpu']}",
             f"config {result['config']}; best of {result['rounds']} interleaved calls of "
             f"{result['steps']} samples per stream (wall time; CPU time of all threads); "
             f"shaping {result['shaping']}",
             f"{'prec':4} {'batch':>5} {'thr':>3} {'variant':19} {'samples/s':>10} "
             f"{'x plain':>7} {'per CPU s':>10} {'x plain':>7} {'median/s':>10}"]
    rows = result["rows"]
    for r in rows:
        base = next(b for b in rows if b["variant"] == "plain"
                    and (b["precision"], b["batch"]) == (r["precision"], r["batch"]))
        lines.append(f"{r['precision']:4} {r['batch']:5d} {r['threads']:3d} {r['variant']:19} "
                     f"{r['samples_per_s']:10,.0f} "
                     f"{r['samples_per_s'] / base['samples_per_s']:7.3f} "
                     f"{r['samples_per_cpu_s']:10,.0f} "
                     f"{r['samples_per_cpu_s'] / base['samples_per_cpu_s']:7.3f} "
                     f"{r['median_samples_per_s']:10,.0f}")
    return "\n".join(lines)
