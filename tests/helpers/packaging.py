"""Readers for the packaging files (Dockerfile, docker-compose.yml, Makefile, constraints.txt,
pyproject.toml) shared by the tests in tests/packaging/."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"
ENTRY_POINT = ["wavenet", "serve"]


# ------------------------------------------------------------------ helpers


def dockerfile_instructions(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker also drops comment lines inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    return instructions


def dockerfile_cmd() -> list[str]:
    cmds = [args for keyword, args in dockerfile_instructions() if keyword == "CMD"]
    assert cmds, "the Dockerfile has no CMD"
    try:
        cmd = json.loads(cmds[-1])
    except json.JSONDecodeError:
        pytest.fail(f"CMD must use the exec (JSON list) form, got: {cmds[-1]}")
    assert isinstance(cmd, list) and all(isinstance(part, str) for part in cmd)
    return cmd


def load_compose() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML (dev extra) is not installed")
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def makefile_recipe(target: str) -> str:
    """The recipe lines of one Makefile target, joined."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    recipe: list[str] = []
    inside = False
    for line in lines:
        if re.match(rf"^{re.escape(target)}\s*:(?!=)", line):
            inside = True
            continue
        if inside:
            if line.startswith("\t"):
                recipe.append(line.strip())
            elif line.strip() and not line.startswith("#"):
                break
    assert recipe, f"the Makefile has no recipe for `{target}`"
    return "\n".join(recipe)


def find_hadolint() -> str | None:
    found = shutil.which("hadolint")
    if found:
        return found
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.exists():
        return str(beside_python)
    in_venv = ROOT / ".venv" / "bin" / "hadolint"
    return str(in_venv) if in_venv.exists() else None


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraint_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.!]+)", line)
        assert match, f"constraints.txt: not a plain `name==version` pin: {line!r}"
        pins[canonical(match[1])] = match[2]
    return pins


def pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())
