"""The triton kernel on models wider than one weight tile per dot (issue 30): the dots run
over channel blocks (kernel.py, CB and GB). A 512-channel model (r9y9's LJSpeech width,
two layers, a few samples) against the torch backend in the interpreter; the blocked path
forced on a small model against its one-block kernel, and the wide path (x and the skip
sum in the scratch) against the register-held one; the block choice's shared-memory
budget; and the sm_90 compile of r9y9's full preset: shared memory within an SM, no
register spills (fp16 for one stream: an expected failure, see docs/triton-kernel.md)."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

if importlib.util.find_spec("triton") is None:      # see test_triton_backend.py
    pytest.skip("triton is not installed", allow_module_level=True)

from tests.generation.triton.test_triton_backend import (  # noqa: E402
    DEVICE,
    _rows,
    check_alone_or_beside_others,
)
from tests.generation.triton.test_triton_options import (  # noqa: E402
    _inputs,
    _teacher_gap,
    option_config,
)
from tests.helpers.tiny_models import random_model  # noqa: E402
from wavenet_core.generation.triton import shape as triton_shape  # noqa: E402
from wavenet_core.generation.triton.backend import TritonBackend  # noqa: E402
from wavenet_core.generation.triton.shape import kernel_shape  # noqa: E402
from wavenet_core.model.config import MelConfig, WaveNetConfig  # noqa: E402

R9Y9_WIDTHS = dict(residual_channels=512, gate_channels=256, skip_channels=256, kernel_size=3,
                   out_bias=True, residual_scale=0.5 ** 0.5, input_kind="scalar",
                   output="mol")
WIDE = WaveNetConfig(layers_per_stack=2, stacks=1, dilation_cycle=(1, 2), mixtures=3,
                     mel_channels=4, mel=MelConfig(n_mels=4), **R9Y9_WIDTHS)
R9Y9 = WaveNetConfig(layers_per_stack=6, stacks=4, mixtures=10, mel_channels=80,
                     upsample_scales=(4, 4, 4, 4), mel=MelConfig(n_mels=80, hop_length=256),
                     **R9Y9_WIDTHS)


def test_a_512_channel_model_runs_in_channel_blocks_and_equals_torch():
    cp, gp, sp, _, tn, cb, gb, hb = kernel_shape(WIDE, "fp32")
    # fp32 blocks of 8 KiB ([16, 256] and [16, 512] weights) and 16-wide head blocks
    assert (cp, gp, sp) == (512, 256, 256) and (cb, gb, tn, hb) == (16, 16, 16, 16)
    assert _teacher_gap(WIDE, steps=3) < 1e-4


def test_a_512_channel_stream_is_bitwise_the_same_alone_or_beside_others():
    backend = TritonBackend(random_model(WIDE, seed=3), DEVICE, precision="fp32")
    mine = dict(seed=1234, temperature=0.9, speaker=0, history=_inputs(WIDE, 3, 97),
                history_local=_rows(1, 2, 4, 98)[0])
    check_alone_or_beside_others(backend, mine, _rows(1, 3, 4, 99), ((17, [1, 2]),),
                                 num_slots=18)


@pytest.mark.parametrize("name", ["kernel4", "mol"])
def test_blocked_dots_equal_the_one_block_kernel(name, monkeypatch):
    """fp32's blocks on a small model (gate blocks of 32 inputs, out blocks of 16 z
    channels, head blocks of 16 hidden units and 16 skip channels) against the one-block
    kernel, forced: the same outputs within float32 rounding (the sums run in another
    order)."""
    config = replace(option_config(name), residual_channels=40, gate_channels=24,
                     skip_channels=20)
    model = random_model(config, seed=5)
    out = []
    for tile, head, blocks in ((triton_shape.TILE_BYTES, 1 << 10, (64, 32, 32, 32)),
                               (16 * 64 * 4, 16, (32, 16, 16, 16))):
        monkeypatch.setattr(triton_shape, "FP32_TILE_BYTES", tile)
        monkeypatch.setattr(triton_shape, "FP32_BLOCK", head)
        backend = TritonBackend(model, DEVICE, precision="fp32")
        assert (backend.cp, backend.gp, backend.sp) == (64, 32, 32)
        assert (backend.cb, backend.gb, backend.tn, backend.hb) == blocks
        state = backend.new_state(2)
        for slot in range(2):
            backend.open_slot(state, slot, seed=slot, temperature=0.0, speaker=slot)
        inputs = _inputs(config, (2, 5), 1)
        rows = _rows(2, 5, config.mel_channels, 2)
        out.append(backend.teacher_force(state, [0, 1], inputs, rows).cpu().numpy())
    np.testing.assert_allclose(out[1], out[0], rtol=0, atol=1e-5)


def test_the_scratch_held_rows_equal_the_register_held_ones(monkeypatch):
    """A model wider than shape.WIDE keeps x and the skip sum in the scratch rows between
    the block loops (kernel.py, WIDE): forced on a small model in blocks, the same codes
    and logits bitwise as the register-held kernel."""
    config = replace(option_config("mol"), residual_channels=40, gate_channels=24,
                     skip_channels=20)
    model = random_model(config, seed=6)
    monkeypatch.setattr(triton_shape, "FP32_TILE_BYTES", 16 * 64 * 4)
    out = []
    for wide in (triton_shape.WIDE, 16):
        monkeypatch.setattr(triton_shape, "WIDE", wide)
        backend = TritonBackend(model, DEVICE, precision="fp32")
        assert backend.wide == (wide == 16) and backend.cb < backend.cp
        state = backend.new_state(2)
        for slot in range(2):
            backend.open_slot(state, slot, seed=slot, temperature=0.8, speaker=slot)
        rows = _rows(2, 6, config.mel_channels, 3)
        codes = backend.generate(state, [0, 1], 6, rows)
        logits = backend.teacher_force(state, [0, 1], _inputs(config, (2, 3), 4), rows[:, :3])
        out.append((codes, logits.cpu().numpy()))
    np.testing.assert_array_equal(out[1][0], out[0][0])
    np.testing.assert_array_equal(out[1][1], out[0][1])


def test_channel_blocks_shrink_to_the_shared_memory_budget(monkeypatch):
    """kernel_shape budgets all the tiles the kernel stages, not one tile: r9y9's preset
    in fp16 fits SHARED_BYTES, and a smaller budget halves its blocks until it fits."""
    stages = triton_shape.block_stages(R9Y9)
    full = kernel_shape(R9Y9, "fp16")
    assert triton_shape.shared_estimate(full, 2, stages) <= triton_shape.SHARED_BYTES
    monkeypatch.setattr(triton_shape, "SHARED_BYTES", 96 << 10)
    small = kernel_shape(R9Y9, "fp16")
    assert triton_shape.shared_estimate(small, 2, stages) <= 96 << 10
    assert small[5] * small[6] < full[5] * full[6] and small[:5] == full[:5]


@functools.cache
def _sm90_build(precision: str, batch: int = 16) -> dict:
    """r9y9's LJSpeech preset (24 layers, 512 channels, mel rows, mixture output) compiled
    for sm_90 as the JIT builds it for `batch` streams (batch 1 makes n a constexpr) by
    Triton's compiler and the ptxas in its wheel, no GPU (10-40 s): its shared memory and
    ptxas's report, in a child process (no TRITON_INTERPRET there)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    script = (
        "import json, subprocess, sys, tempfile\n"
        "from tests.generation.triton.test_triton_wide import R9Y9\n"
        "from wavenet_core.generation.triton.aot import compile_kernel\n"
        "from triton.backends.nvidia.compiler import get_ptxas\n"
        f"k = compile_kernel(R9Y9, {precision!r}, 90, local=True, batch={batch})\n"
        "d = tempfile.mkdtemp()\n"
        "open(d + '/k.ptx', 'w').write(k.asm['ptx'])\n"
        "r = subprocess.run([get_ptxas(90).path, '-v', '--gpu-name=sm_90a', d + '/k.ptx',\n"
        "                    '-o', d + '/k.o'], capture_output=True, text=True, check=True)\n"
        "print(json.dumps({'shared': k.metadata.shared, 'ptxas': r.stderr}))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=900)
    if out.returncode and "ptxas" in out.stderr and ("No such file" in out.stderr
                                                      or "not found" in out.stderr):
        pytest.skip("the triton wheel has no ptxas")
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU runs the kernel itself")


@NO_GPU
@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_r9y9_width_fits_shared_memory_for_sm90(precision):
    """The build's shared memory is within an SM's 227 KiB, and kernel_shape's estimate
    of it is within 4 KiB below (what the block choice budgets)."""
    shared = _sm90_build(precision)["shared"]
    estimate = triton_shape.shared_estimate(kernel_shape(R9Y9, precision),
                                              2 if precision == "fp16" else 4,
                                              triton_shape.block_stages(R9Y9))
    assert 0 < shared <= 227 * 1024
    assert estimate <= shared <= estimate + 4096


SPILLS = pytest.mark.xfail(strict=True, reason="the one-stream fp16 build (n a constexpr 1) "
                           "still spills 76 bytes: docs/triton-kernel.md, 'Wide models'")


@NO_GPU
@pytest.mark.parametrize("precision,batch", [
    ("fp16", 16), ("fp32", 16), pytest.param("fp16", 1, marks=SPILLS), ("fp32", 1)])
def test_r9y9_width_compiles_for_sm90_without_spills(precision, batch):
    ptxas = _sm90_build(precision, batch)["ptxas"]
    spills = [int(n) for n in re.findall(r"(\d+) bytes spill", ptxas)]
    assert spills and max(spills) == 0, ptxas
