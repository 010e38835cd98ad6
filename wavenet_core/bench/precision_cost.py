"""What reduced-precision weights cost: held-out NLL through the compiled CPU kernel itself.

Each precision's backend teacher-forces the same held-out windows (data.fixed_batches,
the training's validation windows) from zeroed queues; the logits for positions past the
receptive field are exactly the valid forward's, so the NLL is the one training reports,
computed by the kernel that serves. An excitation model's windows (`rows=True`) carry
their coefficient rows; the kernel is given the decoded samples of the input codes and
makes each prediction itself, so the utterances must be of mu-law audio (a pack, or
audio quantised first) for its predictions to be the windows' own. A scalar-I/O model
(a converted r9y9 one, config.output "mol" or "gaussian") takes `ScalarBatch` windows
(training/scalar_windows.py: samples in, the rows of its learned upsampler) and its
outputs, the distribution's parameters, are scored by generation/scalar_nll.py (r9y9's
own losses: -log of the target's 16-bit bin). The cost of a
precision is its NLL minus fp32's, in bits per sample (precision.NLL_BUDGET_BITS is the
budget `auto` allows).
"""

from __future__ import annotations

import math

import numpy as np

from wavenet_core.audio.mulaw import mulaw_decode
from wavenet_core.generation.cpu.backend import CpuBackend
from wavenet_core.generation.scalar_nll import logsumexp, scalar_nll
from wavenet_core.model.wavenet import WaveNet
from wavenet_core.training.data import Batch
from wavenet_core.training.scalar_windows import ScalarBatch


def kernel_bits(backend: CpuBackend, batches: list[Batch] | list[ScalarBatch]) -> float:
    """Teacher-forced NLL (bits/sample) of `backend` on the windows `batches` (ScalarBatch
    windows for a scalar-I/O model: samples in, scored by scalar_nll)."""
    config = backend.config
    field = config.receptive_field
    total, count = 0.0, 0
    for batch in batches:
        n = len(batch.inputs)
        state = backend.new_state(n)
        for row in range(n):
            backend.open_slot(state, row, speaker=int(batch.speaker[row]))
        if config.scalar_io:
            outputs = backend.teacher_force(state, list(range(n)), batch.inputs, batch.rows)
            total += float(scalar_nll(outputs[:, field - 1:], batch.targets, config).sum())
        else:
            outputs = backend.teacher_force(state, list(range(n)), *_code_inputs(config, batch))
            total += float(softmax_nll(outputs[:, field - 1:], batch.targets).sum())
        count += batch.targets.size
    return total / max(1, count) / math.log(2)


def _code_inputs(config, batch: Batch) -> tuple:
    """(inputs, local, lpc=) of a softmax model's window, as teacher_force takes them."""
    local = None if batch.local is None else np.ascontiguousarray(
        batch.local.transpose(0, 2, 1))
    inputs = batch.inputs
    if config.lpc_excitation:
        inputs = mulaw_decode(inputs, mu=config.classes - 1)
    return inputs, local, batch.lpc


def softmax_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log softmax(logits)[target] (nats) per position, float64."""
    logits = logits.astype(np.float64)
    log_z = logsumexp(logits)
    picked = np.take_along_axis(logits, targets[..., None].astype(np.int64), axis=-1)[..., 0]
    return log_z - picked


def precision_costs(model: WaveNet, batches: list[Batch],
                    precisions=("bf16", "int8", "bf16a", "int8a"),
                    threads: int | None = None, log=print) -> dict[str, dict[str, float]]:
    """{precision: {"bits": NLL, "cost": NLL - fp32's NLL}} for fp32 and `precisions`."""
    if model.config.cond_layers:
        raise ValueError(f"cond_layers={model.config.cond_layers}: precision costs of a model "
                         "with a conditioning network are not measured yet")
    out = {}
    for precision in ("fp32",) + tuple(p for p in precisions if p != "fp32"):
        bits = kernel_bits(CpuBackend(model, threads=threads, precision=precision), batches)
        out[precision] = {"bits": bits, "cost": bits - out.get("fp32", {"bits": bits})["bits"]}
        log(f"  {precision}: {bits:.4f} bits/sample (cost {out[precision]['cost']:+.4f})")
    return out
