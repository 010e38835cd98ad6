"""Training speed in one run: samples/s of the teacher-forced step, the plain autograd step
against the fused one (training/fused.py), as a share of this CPU's bfloat16 matrix peak
measured in the same run (issue 26, item 3; `benchmarks/train_speed.py` prints it).

A step is what the training loop times per step (`train.train_step`): loss, backward,
gradient clipping, Adam. The plain recipe is today's: the autograd step with torch's
default (per-tensor loop) Adam; the fused one is what `wavenet train` runs on a CPU: the
fused step with the training loop's Adam (`train.make_optimizer`, torch's fused Adam).
The optimizer's share is timed apart too (`adam_plain_ms`, `adam_fused_ms`). Both recipes
train their own copy of the same initial model on the same windows, in alternating rounds,
so load from other processes falls on both.
The plain step reads its mel rows as the training loop gives them (`sample_batch`), the
fused one the same windows' frames (`frames=True`).

FLOPs per training sample are counted from the config: the matrix products the model's
definition makes for one step, forward once and backward twice (input and weight
gradients), without the input gradient of the mel rows (nothing upstream learns) and
without outputs nothing reads (skips of the receptive-field rows, the last layer's
residual); the mel product is counted per sample, as the model defines it (the fused
step makes it per frame). The peak is the best of several bfloat16 products
[B*W, 128] x [128, 128], the size of the step's own, on the same threads.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from wavenet_core.model.config import MelConfig, WaveNetConfig
from wavenet_core.model.wavenet import WaveNet
from wavenet_core.training.data import sample_batch
from wavenet_core.training.train import batch_loss, make_optimizer, train_step
from wavenet_core.training.utterance import Utterance, make_utterance


def recipe_config(excitation: str = "none") -> WaveNetConfig:
    """The bundled vocoder's shape (models/MODEL_CARD.md) with mel standardisation."""
    return WaveNetConfig(layers_per_stack=9, stacks=2, residual_channels=64, skip_channels=128,
                         mel_channels=80, mel=MelConfig(), mel_mean=-4.7, mel_std=2.45,
                         excitation=excitation)


def synthetic_utterances(config: WaveNetConfig, count: int = 3, seconds: float = 2.0,
                         seed: int = 0) -> list[Utterance]:
    """Speech-like audio (a gliding harmonic tone with noise) as training utterances; the
    step's cost does not depend on what the samples are."""
    rng = np.random.default_rng(seed)
    rate = config.sample_rate
    t = np.arange(int(seconds * rate)) / rate
    out = []
    for i in range(count):
        f0 = 110 + 40 * i + 30 * np.sin(2 * np.pi * 0.7 * t)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        audio = sum(np.sin(h * phase) / h for h in range(1, 12)) * 0.2
        audio = (audio + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
        out.append(make_utterance(audio, 0, config, config.receptive_field))
    return out


def _layer_rows(config: WaveNetConfig, window: int) -> list[int]:
    """Each layer's output length for one training window of `window` predictions."""
    length = config.receptive_field - 1 + window
    rows = []
    for d in config.dilations:
        length -= (config.kernel_size - 1) * d
        rows.append(length)
    return rows


def train_flops(config: WaveNetConfig, batch: int, window: int) -> int:
    """FLOPs of one training step (see the module docstring)."""
    c = config
    gate, channels, skip = c.gate_width, c.residual_channels, c.skip_channels
    rows = [batch * length for length in _layer_rows(c, window)]
    outputs = batch * window
    last = len(rows) - 1
    forward = sum(2 * r * (c.kernel_size * channels * 2 * gate + c.mel_channels * 2 * gate
                           + (gate * channels if i < last else 0)) for i, r in enumerate(rows))
    forward += len(rows) * 2 * outputs * gate * skip
    forward += 2 * outputs * (skip * skip + skip * c.output_channels)
    mel_input_gradient = sum(2 * r * c.mel_channels * 2 * gate for r in rows)
    return 3 * forward - mel_input_gradient


def matmul_peak(rows: int, width: int = 128, repeats: int = 20,
                dtype: torch.dtype = torch.bfloat16) -> float:
    """FLOP/s of the best of `repeats` products [rows, width] x [width, width] in `dtype`."""
    a = torch.randn(rows, width).to(dtype)
    b = torch.randn(width, width).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * rows * width * width / best


def _optimizer_seconds(optimizer: torch.optim.Optimizer, repeats: int = 9) -> float:
    """Median seconds of one `optimizer.step()` on the gradients it last stepped with."""
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        optimizer.step()
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds)


@dataclass
class RecipeTiming:
    name: str
    step_seconds: list[float] = field(default_factory=list)   # wall clock
    cpu_seconds: list[float] = field(default_factory=list)    # process CPU time

    def samples_per_s(self, samples_per_step: int) -> float:
        """From the median step (robust to the odd step another process slowed)."""
        return samples_per_step / statistics.median(self.step_seconds)

    def samples_per_cpu_s(self, samples_per_step: int) -> float:
        """Per second of CPU time (all threads), median step: what the cores achieve,
        nearly independent of other processes' load on a shared machine."""
        return samples_per_step / statistics.median(self.cpu_seconds)


def compare_recipes(config: WaveNetConfig, batch: int = 4, window: int = 4000,
                    rounds: int = 6, steps_per_round: int = 2, bfloat16: bool = True,
                    seed: int = 0, log=print) -> dict:
    """Alternating rounds of plain and fused steps; returns samples/s of each (wall clock,
    and per CPU second: keys with `_cpu`), their ratios, the loss of each on the first
    (same) window batch, and the FLOPs per sample."""
    torch.manual_seed(seed)
    models = {"plain": WaveNet(config).train()}
    models["fused"] = copy.deepcopy(models["plain"])
    optimizers = {"plain": torch.optim.Adam(models["plain"].parameters(), lr=1e-4),
                  "fused": make_optimizer(models["fused"], 1e-4)}
    utterances = synthetic_utterances(config, seed=seed)
    batches = {k: [sample_batch(utterances, config, batch, window,
                                np.random.default_rng([seed, i]), frames=(k == "fused"))
                   for i in range(steps_per_round)] for k in models}
    timings = {k: RecipeTiming(k) for k in models}
    device = torch.device("cpu")
    for name, model in models.items():      # warm-up (numba kernels, oneDNN primitives)
        train_step(model, optimizers[name], batches[name][0], device, bfloat16,
                   name == "fused", 1.0)
    for r in range(rounds):
        for name, model in models.items():
            for b in batches[name]:
                t0, c0 = time.perf_counter(), time.process_time()
                train_step(model, optimizers[name], b, device, bfloat16, name == "fused", 1.0)
                timings[name].step_seconds.append(time.perf_counter() - t0)
                timings[name].cpu_seconds.append(time.process_time() - c0)
        log(f"  round {r + 1}/{rounds}: " + ", ".join(
            f"{k} {batch * window / statistics.median(t.step_seconds[-steps_per_round:]):,.0f}"
            for k, t in timings.items()) + " samples/s")
    with torch.no_grad():    # the loss of each step on one batch, from the same weights
        same = {k: float(batch_loss(models["plain"], batches[k][0], device, bfloat16,
                                    k == "fused")) for k in models}
    samples = batch * window
    out = {"loss_plain": same["plain"], "loss_fused": same["fused"],
           "flops_per_sample": train_flops(config, batch, window) / samples}
    for k, optimizer in optimizers.items():
        out[f"adam_{k}_ms"] = 1e3 * _optimizer_seconds(optimizer)
    for k, t in timings.items():
        out[k], out[k + "_cpu"] = t.samples_per_s(samples), t.samples_per_cpu_s(samples)
    out["ratio"] = out["fused"] / out["plain"]
    out["ratio_cpu"] = out["fused_cpu"] / out["plain_cpu"]
    return out
