"""Training as plain functions: teacher-forced cross-entropy on random corpus windows.

Adam with linear warm-up then cosine decay, gradient clipping, validation NLL (bits per
sample) on the held-out split, checkpoints every N steps and at the end (safetensors
model + a separate safetensors optimizer-state file, never pickle), resume, a progress
bar with loss and samples/s, and a JSON-lines metrics log.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from wavenet_core.generation.precision import native_precisions
from wavenet_core.generation.registry import resolve_device
from wavenet_core.model.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from wavenet_core.model.config import WaveNetConfig
from wavenet_core.model.transfer import starting_point, with_cond_net
from wavenet_core.model.wavenet import WaveNet
from wavenet_core.training.data import (
    Batch,
    fixed_batches,
    load_utterances,
    mel_statistics,
    sample_batch,
)
from wavenet_core.training.fused import fused_batch_loss
from wavenet_core.training.utterance import InputNoise

MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
METRICS_FILE = "metrics.jsonl"


@dataclass
class TrainSettings:
    corpus: str
    out_dir: str
    steps: int = 10000
    batch_size: int = 8
    window: int = 4000            # predicted samples per window (plus R-1 of context)
    lr: float = 1e-3
    min_lr: float = 5e-5
    warmup: int = 200
    grad_clip: float = 1.0
    checkpoint_every: int = 500
    valid_every: int = 500
    valid_windows: int = 64
    seed: int = 0
    threads: int = 0              # torch intra-op threads; 0 = leave as is
    max_minutes: float = 0.0      # stop (and checkpoint) after this wall time; 0 = no limit
    precision: str = "auto"       # fp32 | bf16 (autocast) | auto: bf16 where it is native
    device: str = "auto"          # auto (cuda when available) | cpu | cuda | cuda:N
    init_from: str = ""           # start from this checkpoint's weights (transfer.py)
    fused: bool = True            # the fused training step on a CPU (fused.py); same loss
    input_noise: float = 0.0      # excitation models: noise on the inputs' history, in mu-law
                                  # steps (LPCNet's noise injection, utterance.py); 0 = none
    input_noise_domain: str = "signal"  # ... of the signal, or of the excitation in a closed
                                        # loop (LPCNet's own: utterance.InputNoise)
    input_noise_law: str = "gaussian"   # one deviation for all, or LPCNet's random one per
                                        # utterance with Laplacian draws (idem)
    add_corpus: tuple[str, ...] = ()  # more training audio: their 'train' splits join the
                                  # corpus's (validation stays the corpus's own); no speakers


def training_utterances(s: TrainSettings, config: WaveNetConfig, pad: int,
                        noise: InputNoise | None = None) -> list:
    """The 'train' split of the corpus and of every `add_corpus`, in that order."""
    if s.add_corpus and config.num_speakers:
        raise ValueError("add_corpus: the corpora's speaker ids differ; "
                         "train a model without speaker input")
    return [u for corpus in (s.corpus, *s.add_corpus)
            for u in load_utterances(corpus, "train", config, pad, noise=noise)]


def use_bfloat16(precision: str, device: torch.device = torch.device("cpu"),
                 flags: frozenset[str] | None = None) -> bool:
    """bf16 autocast halves training time on CPUs with native bf16 (AVX512-BF16, AMX) and
    on recent GPUs; elsewhere it is emulated and slower, so `auto` picks it only there.
    (oneDNN reports bf16 "supported" on any AVX-512 CPU: on an Intel Xeon without
    AVX512-BF16 its emulation trained 2.8x slower than float32, docs/training.md.)"""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return "bf16" in native_precisions(flags)


def learning_rate(step: int, s: TrainSettings, elapsed_minutes: float = 0.0) -> float:
    """Linear warm-up, then cosine decay over the steps or the time budget, whichever
    runs out first (so a run stopped by --max-minutes still ends at min_lr)."""
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = min(1.0, (step - s.warmup) / max(1, s.steps - s.warmup))
    if s.max_minutes:
        progress = max(progress, min(1.0, elapsed_minutes / s.max_minutes))
    return s.min_lr + 0.5 * (s.lr - s.min_lr) * (1 + math.cos(math.pi * progress))


def batch_loss(model: WaveNet, batch: Batch, device, bfloat16: bool = False,
               fused: bool = False) -> torch.Tensor:
    """Mean cross-entropy (nats per sample) of the batch's targets (an excitation model's:
    of the excitation codes, given the prediction); `fused`: the same loss by the fused
    step (fused.py, CPU; a mel model's batch needs frames: `sample_batch(frames=True)`)."""
    if fused:
        return fused_batch_loss(model, batch, bfloat16)
    inputs = torch.from_numpy(batch.inputs).to(device)
    local = None if batch.local is None else torch.from_numpy(batch.local).to(device)
    if batch.frames is not None:     # a conditioning network: rows from conditioned frames
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
            local = model.local_from_frame_window(
                *(torch.from_numpy(getattr(batch.frames, f)).to(device)
                  for f in ("frames", "left", "right", "weight"))).float()
    speaker = torch.from_numpy(batch.speaker).to(device) if model.config.global_conditioning \
        else None
    prediction = (None if batch.prediction is None
                  else torch.from_numpy(batch.prediction).to(device))
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
        logits = model(inputs, local, speaker, prediction=prediction)
    return F.cross_entropy(logits.float(), torch.from_numpy(batch.targets).to(device))


def make_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.Adam:
    """The training loop's Adam, `fused` where torch has that (the CPU and CUDA): one
    vectorised pass per parameter instead of a loop of tensor operations (the vocoder's 149
    tensors: about 1.5 ms a step on the CPU against 15). The same update within float
    rounding and the same state (step, exp_avg, exp_avg_sq), so optimizer files are
    unchanged and either resumes the other's."""
    fused = all(p.device.type in ("cpu", "cuda") for p in model.parameters())
    return torch.optim.Adam(model.parameters(), lr=lr, fused=fused or None)


def train_step(model: WaveNet, optimizer: torch.optim.Optimizer, batch: Batch, device,
               bfloat16: bool, fused: bool, grad_clip: float) -> tuple[torch.Tensor, float]:
    """One teacher-forced step: loss, backward, gradient clipping, optimizer step ->
    (loss, gradient norm before clipping)."""
    loss = batch_loss(model, batch, device, bfloat16, fused)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip))
    optimizer.step()
    return loss, grad_norm


@torch.no_grad()
def validation_bits(model: WaveNet, batches: list[Batch], device) -> float:
    """Held-out negative log-likelihood in bits per sample."""
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        n = batch.targets.size
        total += float(batch_loss(model, batch, device)) * n
        count += n
    model.train()
    return total / max(1, count) / math.log(2)


def base_steps(start: str | Path, start_step: int) -> int:
    """Steps the starting weights had before this run (0 from scratch): a resumed run
    keeps its own count, a run started `--init-from` a checkpoint adds that one's total."""
    if not start:
        return 0
    meta = read_metadata(start)
    total = int(meta.get("total_steps", meta.get("step", 0)))
    return total - start_step


def save_optimizer(path: Path, optimizer: torch.optim.Optimizer, step: int) -> None:
    tensors = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"{index}.{key}"] = torch.as_tensor(value).detach().cpu().clone()
    save_file(tensors, str(path), metadata={"step": str(step)})


def load_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> None:
    tensors = load_file(str(path))
    state_dict = optimizer.state_dict()
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state_dict["state"].setdefault(int(index), {})[key] = value
    optimizer.load_state_dict(state_dict)


def train(config: WaveNetConfig, s: TrainSettings, resume: bool = False,
          speakers: list[str] | None = None, progress: bool = True) -> Path:
    """Train (or resume) and return the final checkpoint path."""
    if s.threads:
        torch.set_num_threads(s.threads)
    torch.manual_seed(s.seed)
    out = Path(s.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(s.device)
    start_step, model = 0, None
    if resume and (out / MODEL_FILE).exists():
        model = load_checkpoint(out / MODEL_FILE, device)
        start_step = json.loads((out / "state.json").read_text())["step"]
    elif s.init_from:
        model = starting_point(s.init_from, config.num_speakers)
        if config.cond_layers and not model.config.cond_layers:   # add one (the identity)
            model = with_cond_net(model, config.cond_layers, config.cond_kernel, s.seed)
    if model is not None:
        config = model.config
    rng = np.random.default_rng([s.seed, start_step])  # a resumed run draws new windows
    pad = config.receptive_field
    if s.input_noise and not config.lpc_excitation:
        raise ValueError("input_noise is for excitation models (excitation 'lpc')")
    noise = InputNoise(s.input_noise, np.random.default_rng([s.seed, start_step, 1]),
                       s.input_noise_domain, s.input_noise_law)
    train_utts = training_utterances(s, config, pad, noise)
    valid_utts = load_utterances(s.corpus, "valid", config, pad)
    valid = fixed_batches(valid_utts, config, s.batch_size, s.window,
                          max(1, s.valid_windows // s.batch_size) * s.batch_size)
    bfloat16 = use_bfloat16(s.precision, device)
    fused = s.fused and device.type == "cpu"
    if model is None:
        if config.local_conditioning:
            mean, std = mel_statistics(train_utts)
            config = dataclasses.replace(config, mel_mean=mean, mel_std=std)
        model = WaveNet(config)
    model = model.to(device).train()
    optimizer = make_optimizer(model, s.lr)
    if start_step and (out / OPTIMIZER_FILE).exists():
        load_optimizer(out / OPTIMIZER_FILE, optimizer)
    print(f"training on {device}, {'bfloat16 autocast' if bfloat16 else 'float32'}, "
          f"{'fused' if fused else 'plain'} step"
          + (f", log-mel standardised with mean {model.config.mel_mean:.3f} std "
             f"{model.config.mel_std:.3f}" if config.local_conditioning else ""))
    meta = {"speakers": json.dumps(speakers or []), "train_settings": json.dumps(asdict(s))}
    base = base_steps(out / MODEL_FILE if start_step else s.init_from, start_step)

    def checkpoint(step: int) -> None:
        save_checkpoint(out / MODEL_FILE, model,
                        {**meta, "step": str(step), "base_steps": str(base),
                         "total_steps": str(base + step)})
        save_optimizer(out / OPTIMIZER_FILE, optimizer, step)
        (out / "state.json").write_text(json.dumps({"step": step}))

    began = time.monotonic()
    bar = tqdm(range(start_step, s.steps), initial=start_step, total=s.steps,
               disable=not progress, dynamic_ncols=True)
    with open(out / METRICS_FILE, "a") as log:
        step = start_step
        for step in bar:
            t0 = time.monotonic()
            lr = learning_rate(step, s, (t0 - began) / 60)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = sample_batch(train_utts, config, s.batch_size, s.window, rng, frames=fused)
            loss, grad_norm = train_step(model, optimizer, batch, device, bfloat16, fused,
                                         s.grad_clip)
            rate = s.batch_size * s.window / (time.monotonic() - t0)
            record = {"step": step + 1, "loss": loss.item(), "lr": lr, "grad_norm": grad_norm,
                      "samples_per_s": rate, "elapsed_s": time.monotonic() - began}
            bar.set_postfix(loss=f"{loss.item():.3f}", sps=f"{rate:.0f}")
            done = step + 1 == s.steps
            out_of_time = s.max_minutes and time.monotonic() - began > 60 * s.max_minutes
            if (step + 1) % s.valid_every == 0 or done or out_of_time:
                record["valid_bits"] = validation_bits(model, valid, device)
                bar.write(f"step {step + 1}: valid NLL {record['valid_bits']:.3f} bits/sample")
            log.write(json.dumps(record) + "\n")
            log.flush()
            if (step + 1) % s.checkpoint_every == 0 or done or out_of_time:
                checkpoint(step + 1)
            if out_of_time:
                bar.write(f"stopping after {s.max_minutes} minutes at step {step + 1}")
                break
    return out / MODEL_FILE
