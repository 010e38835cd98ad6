"""`python -m wavenet_cli` is the `wavenet` command, for checkouts without the script."""

import subprocess
import sys

from tests.helpers.server import ROOT


def test_python_m_wavenet_cli_runs_the_command():
    out = subprocess.run([sys.executable, "-m", "wavenet_cli", "generate", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: wavenet generate"), out.stdout[:200]
