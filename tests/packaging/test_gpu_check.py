"""scripts/gpu-check and the wheels it carries: it runs where only torch, triton, numba and
numpy exist (no FastAPI, no httpx, no safetensors, no tqdm), and a warning on a step's
stderr does not lose the run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile

import pytest

from tests.helpers.packaging import (
    NOT_ON_THE_GPU_MACHINE,
    ROOT,
    canonical,
    constraint_pins,
    hide_installed,
    script_module,
)

wheels = script_module("carried_wheels")

WARNING = "UserWarning: a warning every process prints on stderr"


def test_gpu_check_dry_run_without_the_server_packages(tmp_path):
    """--dry-run where the server's packages, safetensors and tqdm are not installed and
    every process prints a warning on stderr: the imports take safetensors and tqdm from
    the carried wheels, the versions still parse, and pytest collects the test files
    without tests/conftest.py (which imports httpx)."""
    site = hide_installed(tmp_path / "site", NOT_ON_THE_GPU_MACHINE, WARNING)
    env = dict(os.environ, PYTHONPATH=str(site))
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "scripts/gpu-check", str(out), "--dry-run"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((out / "gpu-check.json").read_text())
    assert report["ok"], report
    assert {"safetensors", "tqdm", "fastapi"} <= set(report["missing_packages"])
    assert report["versions"]["torch"].startswith(constraint_pins()["torch"])
    carried = report["carried_wheels"]
    assert [os.path.basename(c) for c in carried] == [
        wheels.wheel_for(name).stem for name in wheels.PACKAGES]
    where = report["steps"]["imports"]["from"]
    for name, folder in zip(wheels.PACKAGES, carried):
        assert where[name].startswith(folder + os.sep), (name, where[name])
    assert report["steps"]["imports"]["stderr_tail"] == [WARNING]
    assert report["steps"]["runner"]["cases"] == ["2"]
    assert report["steps"]["collect"]["rc"] == 0
    assert re.match(r"\d+ tests collected", report["steps"]["collect"]["tail"][-1])
    assert json.loads((out / "corpus" / "manifest.json").read_text())["speakers"] == ["s0", "s1"]
    assert WARNING in (out / "gpu-check.log").read_text()


def test_the_carried_wheels_are_the_pinned_versions_for_the_gpu_machines_python():
    """One wheel per package, the version constraints.txt pins (`make gpu-wheels` after a pin
    changes), installable on CPython 3.12 on x86_64 Linux."""
    pins = constraint_pins()
    found = sorted(path.name.split("-")[0] for path in wheels.WHEELS.glob("*.whl"))
    assert found == sorted(wheels.PACKAGES)
    for name in wheels.PACKAGES:
        wheel = wheels.wheel_for(name)
        _, version, python, abi, platform = wheel.stem.split("-")
        assert version == pins[canonical(name)], f"{wheel.name}: run `make gpu-wheels`"
        assert (python, abi) == ("py3", "none") or (
            re.fullmatch(r"cp3(\d+)", python) and abi == "abi3"
            and int(python[3:]) <= 12) or (python, abi) == ("cp312", "cp312"), wheel.name
        assert platform == "any" or all(re.fullmatch(r"manylinux[_0-9]*_x86_64", tag)
                                        for tag in platform.split(".")), wheel.name
        assert wheel.stat().st_size < 2 * 2**20


def test_unpacking_a_wheel_once_and_refusing_one_that_needs_pip(tmp_path):
    folder = wheels.unpack(wheels.wheel_for("tqdm"), tmp_path)
    assert (folder / "tqdm" / "__init__.py").is_file()
    assert wheels.unpack(wheels.wheel_for("tqdm"), tmp_path) == folder
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]   # no partial folder left
    scattered = tmp_path / "scattered-1.0-py3-none-any.whl"
    with zipfile.ZipFile(scattered, "w") as z:
        z.writestr("scattered/__init__.py", "")
        z.writestr("scattered-1.0.data/scripts/tool", "#!/bin/sh\n")
    with pytest.raises(ValueError, match="outside site-packages"):
        wheels.unpack(scattered, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([folder.name, scattered.name])


def test_carried_wheels_are_used_only_where_the_package_is_missing(tmp_path):
    assert wheels.use_carried_wheels(("safetensors", "tqdm"), tmp_path) == []   # installed here
    assert not list(tmp_path.iterdir())
