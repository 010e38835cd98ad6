"""Readers for the packaging files (Dockerfile, docker-compose.yml, Makefile, constraints.txt,
pyproject.toml) shared by the tests in tests/packaging/."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"
# What the GPU machine lacks among the packages this project uses: it has Python 3.12 with
# torch, triton, numba and numpy (scripts/gpu-check, scripts/gpu-train).
NOT_ON_THE_GPU_MACHINE = ("fastapi", "starlette", "uvicorn", "pydantic", "pydantic_settings",
                          "safetensors", "tqdm", "scipy", "librosa", "soundfile", "httpx",
                          "prometheus_client")
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


SITECUSTOMIZE_HIDING = '''\
"""Written by tests/helpers/packaging.py: {names} are not installed here (see there)."""
import sys

HIDDEN = {names!r}
if {stderr_line!r}:
    print({stderr_line!r}, file=sys.stderr, flush=True)


class _Without:
    """A site-packages finder that finds everything but HIDDEN."""

    def __init__(self, finder):
        self._finder = finder

    def find_spec(self, name, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        return self._finder.find_spec(name, target)

    def __getattr__(self, attr):
        return getattr(self._finder, attr)


def _site_packages_hook(entry):
    if not str(entry).rstrip("/").endswith(("site-packages", "dist-packages")):
        raise ImportError(entry)
    for hook in sys.path_hooks:
        if hook is not _site_packages_hook:
            try:
                return _Without(hook(entry))
            except ImportError:
                continue
    raise ImportError(entry)


sys.path_hooks.insert(0, _site_packages_hook)
sys.path_importer_cache.clear()
'''


def hide_installed(folder: Path, names: tuple[str, ...], stderr_line: str = "") -> Path:
    """`folder` with a sitecustomize.py that hides the top-level packages `names` in every
    site-packages folder: a child process with `folder` first on PYTHONPATH imports them
    only from elsewhere (a carried wheel, say), as on a machine where they are not
    installed, and `importlib.util.find_spec` finds none there. A `stderr_line` is printed
    on stderr as each such process starts (a warning it cannot avoid)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        SITECUSTOMIZE_HIDING.format(names=tuple(names), stderr_line=stderr_line))
    return folder


def script_module(name: str):
    """scripts/<name>.py imported as a module, without putting scripts/ on sys.path."""
    return _file_module(name, ROOT / "scripts" / f"{name}.py")


def benchmark_module(name: str):
    """benchmarks/<name>.py imported as a module (named <name>_benchmark)."""
    return _file_module(f"{name}_benchmark", ROOT / "benchmarks" / f"{name}.py")


def _file_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def project_requirements(*extras: str) -> list:
    """The runtime requirements plus those of `extras` (packaging Requirements), with the
    project's references to its own extras (dev -> wavenet-server[ray,gpu]) expanded."""
    from packaging.requirements import Requirement

    project = pyproject()["project"]
    own = canonical(project["name"])
    found = [Requirement(text) for text in project["dependencies"]]
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in project["optional-dependencies"][extra]:
            requirement = Requirement(text)
            if canonical(requirement.name) == own:
                todo.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def installed_closure(requirements: list) -> dict[str, str]:
    """Every distribution `requirements` pull in, transitively, as this venv's metadata says:
    canonical name -> the requirement that first needed it. Markers are evaluated here;
    requirements not installed here are listed but not followed."""
    from importlib import metadata

    from packaging.requirements import Requirement

    needed: dict[str, str] = {}
    todo = [(requirement, "pyproject.toml") for requirement in requirements]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement, by = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate(
                {"extra": ""}):
            continue
        key = (canonical(requirement.name), frozenset(requirement.extras))
        needed.setdefault(key[0], by)
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue
        for text in dist.requires or []:
            sub = Requirement(text)
            envs = [{"extra": ""}] + [{"extra": e} for e in requirement.extras]
            if sub.marker is None or any(sub.marker.evaluate(e) for e in envs):
                sub.marker = None
                todo.append((sub, requirement.name))
    return needed
