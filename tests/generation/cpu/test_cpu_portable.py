"""The compiled CPU kernel on a machine without AVX-512: an AVX2-only build (numba told
the CPU is a Haswell, with Haswell's features only) must use no 512-bit register and
must give bitwise the samples and logits of this machine's build, in every precision.
LLVM splits each 16-lane operation into 8-lane ones, and the AVX2 build uses smaller
register blocks (cpu.simd.WIDE_REGISTERS); every output's FMA chain and the bf16/int8
widening are the same, so nothing may differ (docs/cpu-kernel.md, "Weight formats"); the
dot formats bf16a and int8a take their portable paths there (no AVX512-BF16, no VNNI),
which must give the instructions' bits (docs/cpu-kernel.md, "Dot formats").
The AVX2 build compiles in a subprocess with its own numba cache."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.tiny_models import random_model
from wavenet_core.model.config import WaveNetConfig

pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                                reason="builds for an x86 CPU (Haswell)")
ROOT = Path(__file__).resolve().parents[3]
HASWELL_FEATURES = ("+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+f16c,+fma,+fxsr,+lzcnt,+mmx,"
                    "+movbe,+popcnt,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave")
# Wide enough for full 64-output panels (gate 80, out 112, logits 256) and their tails.
CONFIG = WaveNetConfig(layers_per_stack=3, stacks=2, dilation_cycle=(1, 3, 5),
                       residual_channels=40, skip_channels=72, classes=256, mel_channels=5,
                       num_speakers=3, speaker_channels=4)
ROWS = 3                         # a pair of rows and a single one: every AVX2 block


def outputs() -> dict[str, np.ndarray]:
    """Codes and teacher-forced logits of three streams, every precision, one thread."""
    from wavenet_core.generation.cpu.backend import CpuBackend

    model = random_model(CONFIG, seed=5)
    local = np.random.default_rng(1).standard_normal((ROWS, 60, 5)).astype(np.float32)
    slots = list(range(ROWS))
    out = {}
    for precision in ("fp32", "bf16", "int8", "bf16a", "int8a"):
        backend = CpuBackend(model, threads=1, precision=precision)
        state = backend.new_state(ROWS)
        for slot in slots:
            backend.open_slot(state, slot, seed=slot + 3, temperature=0.9, speaker=slot)
        codes = backend.generate(state, slots, 60, local)
        out[f"{precision} codes"] = codes
        out[f"{precision} logits"] = backend.teacher_force(state, slots, codes[:, :20],
                                                           local[:, :20])
    return out


def test_an_avx2_build_uses_no_512_bit_registers_and_gives_the_same_bits(tmp_path):
    env = {**os.environ, "NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": HASWELL_FEATURES,
           "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, __file__, str(tmp_path / "avx2.npz")], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["compiled"] and not report["wide"], report   # AVX2 blocks, built now
    assert report["ymm"] and not report["zmm"], report
    theirs = np.load(tmp_path / "avx2.npz")
    mine = outputs()
    assert set(theirs.files) == set(mine)
    for name, value in mine.items():
        np.testing.assert_array_equal(theirs[name], value, err_msg=name)


if __name__ == "__main__":       # the subprocess: build for the CPU numba is told, report
    from wavenet_core.generation.cpu.loop import run_rows
    from wavenet_core.generation.cpu.simd import WIDE_REGISTERS

    results = outputs()
    np.savez(sys.argv[1], **results)
    asm = "".join(run_rows.inspect_asm().values()) if run_rows.signatures else ""
    compiled = not run_rows._cache_hits         # inspect_asm is empty for a cache load
    print(json.dumps({"compiled": compiled, "wide": WIDE_REGISTERS, "zmm": "zmm" in asm,
                      "ymm": "ymm" in asm}))
