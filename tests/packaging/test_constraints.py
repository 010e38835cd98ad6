"""constraints.txt: every requirement `make install` pulls in has an exact pin, torch included."""

from __future__ import annotations

import re
from importlib import metadata

from tests.helpers.packaging import (
    ROOT,
    canonical,
    constraint_pins,
    installed_closure,
    project_requirements,
)


def test_constraints_pin_torch_and_every_other_place_agrees():
    """The pin lives in constraints.txt; the venv, the Makefile's guard and the Dockerfile's
    default must say the same version (an unpinned torch downloads GBs)."""
    pinned = constraint_pins().get("torch")
    assert pinned and re.fullmatch(r"\d+\.\d+\.\d+", pinned), "constraints.txt must pin torch"
    installed = metadata.version("torch").split("+", 1)[0]
    assert installed == pinned, f"the venv holds torch {installed}, constraints.txt {pinned}"
    guard = re.search(r"\^torch==([0-9\\.]+)\$\$", (ROOT / "Makefile").read_text())
    assert guard and guard[1].replace("\\", "") == pinned, "Makefile `constraints` guard"
    spec = re.search(r'^ARG TORCH_SPEC="torch==([^"]+)"', (ROOT / "Dockerfile").read_text(), re.M)
    assert spec and spec[1] == pinned, "Dockerfile TORCH_SPEC default"


def test_constraints_pin_everything_make_installs():
    """Every requirement of `pip install -e .[dev]` (the dev extra holds every other extra),
    transitively, has a pin."""
    top = project_requirements("dev")
    pins = constraint_pins()
    assert not [r.name for r in top if canonical(r.name) not in pins], (
        "pyproject dependencies without a pin in constraints.txt (run `make constraints`)"
    )
    unpinned = {name: by for name, by in installed_closure(top).items() if name not in pins}
    assert not unpinned, f"not pinned in constraints.txt (needed by): {unpinned}"
