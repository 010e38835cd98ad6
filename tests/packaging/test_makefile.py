"""The Makefile and README: one entry point (`wavenet serve`), installs pinned by constraints."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.packaging import (
    ROOT,
    makefile_recipe,
    pyproject,
)


def test_make_serve_and_readme_use_the_same_entry_point():
    scripts = pyproject()["project"]["scripts"]
    assert scripts["wavenet"] == "wavenet_cli.main:main"
    serve = makefile_recipe("serve")
    assert "wavenet serve" in serve, serve
    assert "--host 127.0.0.1" in serve or "--host $(HOST)" in serve
    readme = (ROOT / "README.md").read_text()
    assert "make serve" in readme or "wavenet serve" in readme, (
        "the README must start the server with `make serve` (which runs `wavenet serve`) "
        "or `wavenet serve`"
    )
    assert "make test" in readme
    assert "docker compose up" in readme


def _make_dry_run(target: str, venv: Path, *args: str) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        [make, "--no-print-directory", "-n", target, f"VENV={venv}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_dry_run(tmp_path):
    venv = tmp_path / ".venv"
    assert re.search(r"\.venv/bin/wavenet serve --host 127\.0\.0\.1 --port 8000",
                     _make_dry_run("serve", venv))
    assert re.search(r"\.venv/bin/python -m pytest", _make_dry_run("test", venv))


def test_make_serve_installs_the_runtime_and_make_test_everything(tmp_path):
    """From a fresh clone `make serve` installs the runtime alone (EXTRAS adds to it);
    `make test` after it installs the dev extra into the same venv; `make serve` after
    `make test` installs nothing (the dev extra includes the runtime)."""
    venv = tmp_path / ".venv"
    pip = r"\.venv/bin/python -m pip install -e '([^']*)' -c constraints\.txt"
    assert re.findall(pip, _make_dry_run("serve", venv)) == ["."]
    assert re.findall(pip, _make_dry_run("serve", venv, "EXTRAS=ray,gpu")) == [".[ray,gpu]"]
    assert re.findall(pip, _make_dry_run("test", venv)) == [".[dev]"]
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (venv / ".install-runtime").touch()      # `make serve` has run
    assert re.findall(pip, _make_dry_run("serve", venv)) == []
    assert re.findall(pip, _make_dry_run("test", venv)) == [".[dev]"]
    assert re.findall(pip, _make_dry_run("serve", venv, "EXTRAS=ray")) == [".[ray]"]
    dev = _make_dry_run("test", venv)
    assert re.search(r"touch \S*\.venv/\.install-dev \S*\.venv/\.install-runtime", dev), dev
    (venv / ".install-dev").touch()          # `make test` has run
    assert re.findall(pip, _make_dry_run("test", venv)) == []
    assert re.findall(pip, _make_dry_run("lint", venv)) == []


def test_make_install_uses_the_constraints():
    install = makefile_recipe("$(VENV)/.install-%")
    assert "pip install -e" in install
    assert "-c constraints.txt" in install
