"""scripts/gpu-check: runs where only torch, triton and numpy exist (no FastAPI)."""

from __future__ import annotations

from tests.helpers.packaging import ROOT


def test_gpu_check_dry_run_needs_no_fastapi_and_its_shims_write_real_safetensors(tmp_path):
    """scripts/gpu-check --dry-run with FastAPI unimportable and the stand-ins for
    safetensors/tqdm forced; the stand-in's files must be the real format."""
    import json
    import os
    import subprocess
    import sys

    import torch
    from safetensors.torch import load_file, save_file

    root = ROOT
    blocked = tmp_path / "blocked" / "fastapi"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('fastapi is blocked here')\n")
    env = dict(os.environ, PYTHONPATH=f"{blocked.parent}{os.pathsep}{root}")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, str(root / "scripts" / "gpu-check"), str(out),
                          "--dry-run", "--force-shims"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((out / "gpu-check.json").read_text())
    assert report["ok"] and report["steps"]["imports"]["rc"] == 0
    assert report["steps"]["runner"]["cases"] == ["2"]
    assert json.loads((out / "corpus" / "manifest.json").read_text())["speakers"] == ["s0", "s1"]
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(5), "e": torch.zeros(0)}
    save_file(tensors, str(tmp_path / "real.safetensors"), metadata={"k": "v"})
    script = ("import sys, json; from safetensors.torch import save_file, load_file; "
              "from safetensors import safe_open; import torch; "
              f"t = load_file({str(tmp_path / 'real.safetensors')!r}); "
              f"save_file(t, {str(tmp_path / 'shim.safetensors')!r}, metadata={{'k': 'v'}}); "
              f"f = safe_open({str(tmp_path / 'real.safetensors')!r}); "
              "print(json.dumps(f.metadata()))")
    shim_env = dict(os.environ, PYTHONPATH=str(root / "scripts" / "gpu_check_shims"))
    done = subprocess.run([sys.executable, "-c", script], env=shim_env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"k": "v"}
    back = load_file(str(tmp_path / "shim.safetensors"))
    assert set(back) == set(tensors)
    assert all(torch.equal(back[k], tensors[k]) for k in tensors)
