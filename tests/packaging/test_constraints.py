"""constraints.txt: every requirement `make install` pulls in has an exact pin, torch included."""

from __future__ import annotations

import re
from importlib import metadata

from tests.helpers.packaging import (
    ROOT,
    canonical,
    constraint_pins,
    pyproject,
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
    """Every requirement of `pip install -e .[dev]`, transitively, has a pin."""
    from packaging.requirements import Requirement

    project = pyproject()["project"]
    top = project["dependencies"] + project["optional-dependencies"]["dev"]
    pins = constraint_pins()
    todo = [Requirement(r) for r in top]
    assert not [r.name for r in todo if canonical(r.name) not in pins], (
        "pyproject dependencies without a pin in constraints.txt (run `make constraints`)"
    )
    seen: set[tuple[str, frozenset[str]]] = set()
    unpinned: dict[str, str] = {}
    while todo:
        requirement = todo.pop()
        key = (canonical(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue  # not installed here: its own requirements cannot be read
        for text in dist.requires or []:
            sub = Requirement(text)
            envs = [{"extra": ""}] + [{"extra": e} for e in requirement.extras]
            if sub.marker is not None and not any(sub.marker.evaluate(e) for e in envs):
                continue
            if canonical(sub.name) not in pins:
                unpinned[canonical(sub.name)] = requirement.name
            todo.append(sub)
    assert not unpinned, f"not pinned in constraints.txt (needed by): {unpinned}"
