"""What each job installs: `make serve` the runtime alone, which serves with nothing else;
the extras add ray, triton, and (dev) everything the tests use."""

from __future__ import annotations

import os
import wave
from importlib import metadata
from io import BytesIO

import httpx

from tests.helpers.packaging import (
    canonical,
    hide_installed,
    installed_closure,
    project_requirements,
    pyproject,
)
from tests.helpers.server import BACKEND, ROOT, Server

# What a CPU server needs none of (the dev extra's largest packages, and the test tools).
NOT_FOR_SERVING = {"triton", "ray", "playwright", "onnxruntime", "librosa", "pytest",
                   "hypothesis", "schemathesis", "openai", "wavenet-vocoder"}


def test_the_runtime_pulls_in_none_of_the_extras():
    runtime = installed_closure(project_requirements())
    assert not NOT_FOR_SERVING & set(runtime), {n: runtime[n] for n in NOT_FOR_SERVING
                                                & set(runtime)}


def test_the_dev_extra_holds_every_other_extra():
    """`make test` installs dev: it must cover whatever `make serve EXTRAS=...` can add."""
    extras = pyproject()["project"]["optional-dependencies"]
    assert {"ray", "gpu", "dev"} <= set(extras)
    dev = {str(r) for r in project_requirements("dev")}
    for name in extras:
        missing = {str(r) for r in project_requirements(name)} - dev
        assert not missing, f"the {name} extra's {missing} is not in dev"
    assert any(canonical(r.name) == "triton" for r in project_requirements("gpu"))
    assert any(canonical(r.name) == "ray" for r in project_requirements("ray"))


def _not_in_the_runtime() -> tuple[str, ...]:
    """Top-level modules of this venv that only distributions outside the runtime provide."""
    runtime = set(installed_closure(project_requirements())) | {
        canonical(pyproject()["project"]["name"]), "pip"}
    return tuple(sorted(
        module for module, dists in metadata.packages_distributions().items()
        if module.isidentifier() and not {canonical(d) for d in dists} & runtime))


def test_the_server_starts_and_serves_with_the_runtime_alone(checkpoints, tmp_path):
    """`wavenet serve` with every installed package outside the runtime's requirements
    hidden (as in the venv `make serve` makes): ready, healthy, and it synthesizes."""
    hidden = _not_in_the_runtime()
    assert {"triton", "ray", "pytest"} <= set(hidden)
    site = hide_installed(tmp_path / "site", hidden)
    srv = Server(checkpoints, {"PYTHONPATH": f"{site}{os.pathsep}{ROOT}",
                               "WAVENET_BACKEND": BACKEND}, tmp_path / "serve.log")
    try:
        srv.wait_ready(timeout=180)
        with httpx.Client(base_url=srv.url, timeout=60) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            response = client.post("/v1/synthesize", json={
                "model": "plain", "seconds": 0.05, "seed": 1})
            assert response.status_code == 200, response.text
            with wave.open(BytesIO(response.content)) as wav:
                assert wav.getnframes() == 800
            assert "wavenet" in client.get("/metrics").text
    finally:
        srv.stop()
    assert "ModuleNotFoundError" not in srv.log_path.read_text(errors="replace")
