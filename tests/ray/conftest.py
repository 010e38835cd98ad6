"""A real local Ray cluster with the app deployed as two replicas, once per module.

`ray.init` with explicit CPUs, no dashboard, usage stats off; Serve's HTTP proxy on
127.0.0.1 and a free port; the metrics agent on another free port. Where Ray is not
installed or cannot start, the tests skip and say why. Everything Ray started is shut
down at the end. Beside it runs one plain `wavenet serve` (tests/helpers/server.py's
Server) with the same checkpoint and settings, for byte-for-byte comparisons.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass

import httpx
import pytest

from tests.helpers.server import ROOT, SMALL, Server, free_port

CLUSTER_CPUS = 2
STREAMS = 4            # max_streams: also each replica's max_ongoing_requests
SETTINGS = {"backend": "cpu", "max_streams": STREAMS, "warmup_samples": 64,
            "max_seconds": 30.0, "shutdown_grace_seconds": 5.0,
            "max_streams_per_client": 1024}   # one loopback client fills every slot here
ENV = {"WAVENET_BACKEND": "cpu", "WAVENET_MAX_STREAMS": str(STREAMS),
       "WAVENET_WARMUP_SAMPLES": "64", "WAVENET_MAX_SECONDS": "30",
       "WAVENET_TORCH_THREADS": "1",
       # one loopback client fills every slot here: capacity, not per-client fairness
       "WAVENET_MAX_STREAMS_PER_CLIENT": "1024"}


@dataclass
class Cluster:
    url: str
    metrics_url: str
    fields: dict
    port: int
    single: Server
    replicas: int = 2

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/stream"

    def redeploy(self, replicas: int) -> None:
        """Same app, another replica count (blocks until Serve reports it running)."""
        from server.scaleout.launch import deploy
        from server.scaleout.options import deployment_options
        from server.settings import Settings

        deploy(self.fields, deployment_options(Settings(**self.fields), replicas),
               "127.0.0.1", self.port)
        self.replicas = replicas

    def wait_running(self, replicas: int, timeout: float = 120.0) -> None:
        from ray import serve

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = serve.status().applications["wavenet"].deployments["wavenet"]
            if states.replica_states.get("RUNNING", 0) == replicas and sum(
                    states.replica_states.values()) == replicas:
                return
            time.sleep(0.25)
        raise TimeoutError(f"not {replicas} running replicas: {states.replica_states}")


def replica_actor(replica: str):
    """The Ray actor of the replica whose id a response's X-Served-By named."""
    import ray
    from ray.serve._private.common import REPLICA_ID_FULL_ID_STR_PREFIX

    return ray.get_actor(f"{REPLICA_ID_FULL_ID_STR_PREFIX}wavenet#wavenet#{replica}",
                         namespace="serve")


def running_cluster(tmp_path_factory, write_models):
    """Start Ray, deploy two replicas serving the checkpoints `write_models(folder)` writes,
    and a single-process server with the same ones; yield the Cluster; shut all down."""
    pytest.importorskip("ray.serve", reason="Ray Serve is not installed (the 'ray' extra)")
    import ray
    from ray import serve

    from server.scaleout.launch import start_cluster

    models = tmp_path_factory.mktemp("ray-models")
    write_models(models)
    logs = tmp_path_factory.mktemp("ray-logs")
    single = Server.ready(models, ENV, logs / "single.log")

    # Workers and proxies are started by the raylet, which inherits this environment:
    # they import this tree's `server` (the dev venv's editable install may be another).
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    port, metrics_port = free_port(), free_port()
    try:
        start_cluster(None, num_cpus=CLUSTER_CPUS, object_store_memory=100 << 20,
                      log_to_driver=False, _metrics_export_port=metrics_port,
                      _system_config={"metrics_report_interval_ms": 1000})
    except Exception as exc:   # no /dev/shm, no free ports, sandbox limits, ...
        single.stop()
        pytest.skip(f"Ray cannot start here: {type(exc).__name__}: {exc}")
    c = Cluster(url=f"http://127.0.0.1:{port}", metrics_url=f"http://127.0.0.1:{metrics_port}",
                fields={**SETTINGS, "models": [str(models)]}, port=port, single=single)
    try:
        c.redeploy(2)
        yield c
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            single.stop()


def _plain_model(folder):
    import torch

    from wavenet_core import WaveNet, WaveNetConfig, save_checkpoint

    torch.manual_seed(1234)
    save_checkpoint(folder / "plain.safetensors", WaveNet(WaveNetConfig(**SMALL)))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two replicas of one small unconditioned model."""
    yield from running_cluster(tmp_path_factory, _plain_model)


# ------------------------------------------------------------------ clients


@dataclass
class Outcome:
    replica: str | None
    status: int | None = None
    audio: bytes = b""
    error: str | None = None      # what the client saw go wrong
    done: dict | None = None      # WebSocket: the done event
    error_event: dict | None = None
    close_code: int | None = None
    answered: float = 0.0         # time.monotonic() when the status line arrived
    ended: float = 0.0            # ... and when the body ended (or failed)


async def http_stream(client: httpx.AsyncClient, url: str, body: dict,
                      started: list | None = None) -> Outcome:
    """POST a streamed synthesis and read it to the end (or to the failure); its replica
    goes into `started` once audio arrives."""
    async with client.stream("POST", url + "/v1/synthesize",
                             json={**body, "stream": True, "format": "pcm"}) as r:
        out = Outcome(r.headers.get("x-served-by"), r.status_code, answered=time.monotonic())
        try:
            async for chunk in r.aiter_raw():
                if not out.audio and started is not None:
                    started.append(out.replica)
                out.audio += chunk
        except httpx.HTTPError as exc:
            out.error = f"{type(exc).__name__}: {exc}"
        out.ended = time.monotonic()
        return out


async def ws_stream(url: str, body: dict, started: list | None = None,
                    cancel_after: int | None = None) -> Outcome:
    """One WebSocket synthesis: start, read frames (cancel after `cancel_after` bytes)."""
    import websockets

    async with websockets.connect(url, max_size=None) as ws:
        out = Outcome(ws.response.headers.get("x-served-by"))
        await ws.send(json.dumps({"type": "start", "format": "pcm", **body}))
        cancelled = False
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    if not out.audio and started is not None:
                        started.append(out.replica)
                    out.audio += message
                    if cancel_after is not None and len(out.audio) >= cancel_after \
                            and not cancelled:
                        await ws.send(json.dumps({"type": "cancel"}))
                        cancelled = True
                    continue
                event = json.loads(message)
                if event["type"] == "done":
                    out.done = event
                elif event["type"] == "error":
                    out.error_event = event
        except websockets.ConnectionClosedError as exc:
            out.error = f"{type(exc).__name__}: {exc}"
        out.close_code = ws.close_code
        return out


def sync_ws(url: str, body: dict, **kwargs) -> Outcome:
    return asyncio.run(ws_stream(url, body, **kwargs))
