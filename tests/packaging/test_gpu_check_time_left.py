"""scripts/gpu-check --time-left: only the steps whose time box fits run; the others are
recorded as skipped, and the JSON is written all the same."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.helpers.packaging import ROOT


def test_no_step_runs_when_none_fits_and_the_json_says_so(tmp_path):
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "scripts/gpu-check", str(out), "--time-left", "30"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = json.loads((out / "gpu-check.json").read_text())
    assert report["skipped"] == ["tests", "gpu_model", "bench", "train"], report
    for name in report["skipped"]:
        assert re.fullmatch(r"\d+ s left, its box is \d+ s", report["steps"][name]["skipped"])
    assert report["steps"]["imports"]["rc"] == 0
    assert run.returncode == 0 and report["ok"], run.stdout + run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1])["tests"] is None
