"""The triton kernel on models wider than one weight tile per dot (issue 30): the dots run
over channel blocks (kernel.py, CB and GB). A 512-channel model (r9y9's LJSpeech width,
two layers, a few samples) against the torch backend in the interpreter; the blocked path
forced on a small model against its one-block kernel; and the sm_90 compile of r9y9's
full preset: no register spills, shared memory within an SM's 228 KiB."""

from __future__ import annotations

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
from wavenet_core.generation.triton import backend as triton_backend  # noqa: E402
from wavenet_core.generation.triton.backend import TritonBackend, kernel_shape  # noqa: E402
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
    cp, gp, sp, _, _, cb, gb = kernel_shape(WIDE, "fp32")
    assert (cp, gp, sp) == (512, 256, 256) and (cb, gb) == (64, 32)   # 64 KiB tiles
    assert _teacher_gap(WIDE, steps=3) < 1e-4


def test_a_512_channel_stream_is_bitwise_the_same_alone_or_beside_others():
    backend = TritonBackend(random_model(WIDE, seed=3), DEVICE, precision="fp32")
    mine = dict(seed=1234, temperature=0.9, speaker=0, history=_inputs(WIDE, 3, 97),
                history_local=_rows(1, 2, 4, 98)[0])
    check_alone_or_beside_others(backend, mine, _rows(1, 3, 4, 99), ((17, [1, 2]),),
                                 num_slots=18)


@pytest.mark.parametrize("name", ["kernel4", "mol"])
def test_blocked_dots_equal_the_one_block_kernel(name, monkeypatch):
    """Smaller tiles forced on a small model (gate blocks of 32 inputs, out blocks of 16
    z channels): the same outputs within float32 rounding (the sums run in another
    order)."""
    config = replace(option_config(name), residual_channels=40, gate_channels=24,
                     skip_channels=20)
    model = random_model(config, seed=5)
    out = []
    for tile, blocks in ((triton_backend.TILE_BYTES, (64, 32)), (16 * 64 * 4, (32, 16))):
        monkeypatch.setattr(triton_backend, "TILE_BYTES", tile)
        backend = TritonBackend(model, DEVICE, precision="fp32")
        assert (backend.cp, backend.gp) == (64, 32) and (backend.cb, backend.gb) == blocks
        state = backend.new_state(2)
        for slot in range(2):
            backend.open_slot(state, slot, seed=slot, temperature=0.0, speaker=slot)
        inputs = _inputs(config, (2, 5), 1)
        rows = _rows(2, 5, config.mel_channels, 2)
        out.append(backend.teacher_force(state, [0, 1], inputs, rows).cpu().numpy())
    np.testing.assert_allclose(out[1], out[0], rtol=0, atol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU runs the kernel itself")
@pytest.mark.skipif(not os.environ.get("WAVENET_SLOW_COMPILE"),
                    reason="compiling the 24-layer preset took over 25 minutes on a busy "
                           "2-core CPU; set WAVENET_SLOW_COMPILE=1 to run it")
@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_r9y9_width_compiles_for_sm90_without_spills(precision):
    """Triton's compiler and the ptxas in its wheel, no GPU: r9y9's LJSpeech preset (24
    layers, 512 channels, mel rows, mixture output) in channel blocks."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    script = (
        "import json, subprocess, sys, tempfile\n"
        "from tests.generation.triton.test_triton_wide import R9Y9\n"
        "from wavenet_core.generation.triton.aot import compile_kernel\n"
        "from triton.backends.nvidia.compiler import get_ptxas\n"
        f"k = compile_kernel(R9Y9, {precision!r}, 90, local=True)\n"
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
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert 0 < report["shared"] <= 228 * 1024
    spills = [int(n) for n in re.findall(r"(\d+) bytes spill", report["ptxas"])]
    assert spills and max(spills) == 0, report["ptxas"]
