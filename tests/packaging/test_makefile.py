"""The Makefile and README: one entry point (`wavenet serve`), installs pinned by constraints."""

from __future__ import annotations

import re
import shutil
import subprocess

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


def test_make_dry_run():
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")

    def dry(target: str) -> str:
        result = subprocess.run(
            [make, "--no-print-directory", "-n", target],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert re.search(r"\.venv/bin/wavenet serve --host 127\.0\.0\.1 --port 8000", dry("serve"))
    assert re.search(r"\.venv/bin/python -m pytest", dry("test"))


def test_make_install_uses_the_constraints():
    install = makefile_recipe("$(STAMP)")
    assert "-e '.[dev]'" in install or '-e ".[dev]"' in install
    assert "-c constraints.txt" in install
