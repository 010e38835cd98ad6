"""`.ci/run`: runs `make test` and fails on any failure, or on no tests at all."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest

from tests.helpers.packaging import (
    ROOT,
)

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
