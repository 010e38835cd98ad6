"""A float64 model with the weights a cpu-kernel precision multiplies by (shared by the
cpu precision and option tests)."""

from __future__ import annotations

import copy

import numpy as np
import torch

from tests.helpers.models import random_inputs
from wavenet_core.generation.cpu.backend import CpuBackend
from wavenet_core.generation.cpu.packing import PaddedMatrices
from wavenet_core.generation.cpu.weights import rounded

# The dot formats (cpu/dot.py) round the activations too, which the float64 forward does
# not: their logits are compared within this share of the largest logit (measured: up to
# 0.4% for bf16a, 1.1% for int8a on random configs; a wrong panel layout, pair order or
# correction is off by the order of the logits themselves). Their arithmetic is pinned
# bitwise by tests/generation/cpu/test_cpu_dot.py.
DOT_SHARE = {"bf16a": 0.01, "int8a": 0.03}


def assert_matches_reference(got, expected, precision: str, msg: str = "") -> None:
    """Kernel outputs against the rounded float64 forward: within 1e-4, or within the
    dot format's share of the largest output."""
    atol = DOT_SHARE[precision] * np.abs(expected).max() if precision in DOT_SHARE else 1e-4
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol, err_msg=msg)


def rounded_model(model, precision: str):
    """A float64 copy of `model` whose four matrix kinds hold the values the kernel
    multiplies by in `precision` (biases, embedding, input, mel and speaker weights
    unchanged). The kernel's gate matrix is [k taps of cp, filter zp | gate zp]."""
    mats = PaddedMatrices(model)
    ref = copy.deepcopy(model).double()
    cfg = model.config
    c, s, g, cp, zp = (cfg.residual_channels, cfg.skip_channels, cfg.gate_width, mats.cp,
                       mats.zp)

    def t(a):
        return torch.from_numpy(np.asarray(a, np.float64))

    with torch.no_grad():
        for layer, gm, om in zip(ref.layers, mats.gate, mats.out):
            gm, om = rounded(gm, precision), rounded(om, precision)
            for conv, col in ((layer.filter_conv, 0), (layer.gate_conv, zp)):
                for j in range(cfg.kernel_size):
                    conv.weight[:, :, j] = t(gm[j * cp:j * cp + c, col:col + g].T)
            layer.residual_1x1.weight[:, :, 0] = t(om[:g, :c].T)
            layer.skip_1x1.weight[:, :, 0] = t(om[:g, cp:cp + s].T)
        ref.head_1x1.weight[:, :, 0] = t(rounded(mats.head, precision)[:s, :s].T)
        out = cfg.output_channels
        ref.logits_1x1.weight[:, :, 0] = t(rounded(mats.logit, precision)[:s, :out].T)
    return ref


def teacher_forced_rows(model, precision: str, rows: int, threads: int, length: int):
    """`rows` random streams of `length` inputs teacher-forced together through the cpu
    backend (split mode forced where it applies) -> (outputs [rows, length, out], streams
    as `random_inputs` gives them)."""
    config = model.config
    backend = CpuBackend(model, threads=threads, precision=precision, split="always")
    state = backend.new_state(rows)
    streams = [random_inputs(config, length, seed=r) for r in range(rows)]
    for slot, (_, _, speaker) in enumerate(streams):
        backend.open_slot(state, slot, speaker=0 if speaker is None else int(speaker))
    inputs = np.stack([c[0].numpy() for c, _, _ in streams])
    local = (np.stack([loc[0].T.numpy() for _, loc, _ in streams])
             if config.local_conditioning else None)
    return backend.teacher_force(state, list(range(rows)), inputs, local), streams
