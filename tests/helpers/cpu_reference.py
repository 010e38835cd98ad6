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


STEPS = 120        # alone_then_together's stream length (its chunkings add up to it)


def alone_then_together(model, precision: str, temperature: float, rows) -> np.ndarray:
    """One stream generated alone on one thread, then beside others in group mode (2 and 3
    threads, uneven chunks) and in split mode (fewer slots than threads and more;
    core_cache=0, as for a model larger than a core's L2): its samples, final ring, next
    input and position must be bitwise the same every time. `rows`: mel [16, STEPS, M]
    (row 7 is the stream's), or None. Returns the stream's samples."""
    from wavenet_core.generation.cpu.sync import SPLIT_SUPPORTED

    alone = CpuBackend(model, threads=1, precision=precision)
    state = alone.new_state(1)
    alone.open_slot(state, 0, seed=77, temperature=temperature, speaker=1)
    expected = alone.generate(state, [0], STEPS, None if rows is None else rows[7:8])[0]
    expected_state = (state.ring[0].clone(), float(state.next_value[0]),
                      int(state.positions[0]))
    runs = [(2, 16, "never", (5, 64, 51)), (3, 16, "never", (120,))]
    if SPLIT_SUPPORTED:               # and split mode, with fewer slots than threads or more
        runs += [(2, 1, "always", (1, 60, 59)), (3, 2, "always", (33, 87)),
                 (2, 5, "always", (7, 113)), (3, 4, "always", (120,))]
    for threads, n, split, chunks in runs:
        backend = CpuBackend(model, threads=threads, precision=precision, split=split,
                             core_cache=0)
        assert backend.split_threads(n) == (1 if split == "never" else threads)
        state = backend.new_state(n + 1)
        slots = [n] + list(range(n - 1))          # the stream under test in the last slot
        for r, slot in enumerate(slots):
            mine = r == 0
            backend.open_slot(state, slot, seed=77 if mine else slot, speaker=1 if mine else 0,
                              temperature=temperature if mine else 1.0)
        mel = None if rows is None else np.concatenate([rows[7:8], rows[:n - 1]])
        parts, done = [], 0
        for k in chunks:
            parts.append(backend.generate(state, slots, k,
                                          None if mel is None else mel[:, done:done + k]))
            done += k
        got = np.concatenate(parts, axis=1)
        np.testing.assert_array_equal(got[0], expected, err_msg=f"{threads=} {n=} {chunks=}")
        assert torch.equal(state.ring[n], expected_state[0])
        assert (float(state.next_value[n]), int(state.positions[n])) == expected_state[1:]
    return expected
