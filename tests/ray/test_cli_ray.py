"""`wavenet serve --ray --replicas 2`: starts a local Ray cluster, serves both replicas on
the usual host and port, and on SIGTERM drains and leaves no Ray process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.helpers.server import ROOT, SMALL, free_port

pytestmark = pytest.mark.timeout(300)


def descendants(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            out.update(children)
            todo += children
    return out


def alive(pids: set[int]) -> set[int]:
    """The pids that still run (zombies, waiting for their parent, count as gone)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


def test_wavenet_serve_ray_serves_two_replicas_and_stops_cleanly(tmp_path):
    pytest.importorskip("ray.serve", reason="Ray Serve is not installed (the 'ray' extra)")
    import torch

    from wavenet_core import WaveNet, WaveNetConfig, save_checkpoint

    torch.manual_seed(1)
    save_checkpoint(tmp_path / "plain.safetensors", WaveNet(WaveNetConfig(**SMALL)))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0",
           "WAVENET_BACKEND": "cpu", "WAVENET_WARMUP_SAMPLES": "64",
           "WAVENET_MAX_STREAMS": "2", "WAVENET_MAX_STREAMS_PER_CLIENT": "1024"}
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "wavenet_cli.main", "serve", "--ray",
                             "--replicas", "2", "--port", str(port), "--model",
                             str(tmp_path)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    family: set[int] = set()
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                text = (tmp_path / "serve.log").read_text(errors="replace")
                if proc.returncode == 3 and "error: Ray cannot start" in text:
                    pytest.skip(text[text.index("error: Ray cannot start"):][:800])
                raise AssertionError(f"wavenet serve --ray exited: {text[-3000:]}")
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "not ready"
            time.sleep(0.25)
        family = descendants(proc.pid)
        all_open = threading.Barrier(4, timeout=60)

        def served_by(seed: int) -> str:
            with httpx.stream("POST", url + "/v1/synthesize", timeout=90,
                              json={"num_samples": 128000, "seed": seed, "format": "pcm",
                                    "stream": True}) as r:
                assert r.status_code == 200
                all_open.wait()         # 4 streams live at once, none read yet
                assert len(r.read()) == 256000
                return r.headers["x-served-by"]

        # 4 streams held open at once against 2 per replica (Ray Serve's
        # max_ongoing_requests): one replica cannot hold them all, so the router must use
        # both (a replica that took a third would leave the barrier to time out).
        with ThreadPoolExecutor(4) as pool:
            replicas = set(pool.map(served_by, range(4)))
        assert len(replicas) == 2, replicas
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0
        deadline = time.monotonic() + 30
        while alive(family) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not alive(family), "Ray processes left behind"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in alive(family):
            os.kill(pid, signal.SIGKILL)
        log.close()
