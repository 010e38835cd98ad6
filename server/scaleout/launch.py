"""`wavenet serve --ray`: the app on Ray Serve, N replicas behind one HTTP endpoint.

Starts a local Ray cluster (or joins one with `--ray-address`), starts Serve's HTTP
proxy on --host/--port, deploys `replicas` copies of the app and waits. SIGTERM or
Ctrl-C shuts Serve down, which drains every replica (live streams finish first, for up to
`graceful_shutdown_timeout_s`), then disconnects from (or stops) the cluster.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

APP_NAME = DEPLOYMENT = "wavenet"
IMPORT_PATH = "server.scaleout.replica:build_app"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scale-out on Ray Serve (needs the 'ray' extra)")
    group.add_argument("--ray", action="store_true",
                       help="serve through Ray Serve with --replicas copies of the app")
    group.add_argument("--replicas", type=int, default=2, help="replicas (default 2)")
    group.add_argument("--max-replicas", type=int,
                       help="autoscale between --replicas and this many")
    group.add_argument("--ray-address",
                       help="join this Ray cluster ('auto', host:port) instead of starting one")
    group.add_argument("--replica-cpus", type=float, default=1.0,
                       help="CPUs reserved per replica; also its thread count (default 1)")
    group.add_argument("--replica-gpus", type=float, default=0.0,
                       help="GPUs per replica (default 0)")


def start_cluster(address: str | None, num_cpus: int | None = None, **kwargs) -> None:
    """ray.init without the dashboard or usage stats; a local cluster gets `num_cpus`, and
    its proxies the replica-loss middleware (server/scaleout/proxy.py)."""
    from server.scaleout.proxy import CALLBACK_ENV, CALLBACK_PATH

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault(CALLBACK_ENV, CALLBACK_PATH)
    import ray

    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, **kwargs)


def serve_config(settings_fields: dict, options: dict) -> dict:
    """The Serve config (the schema of deploy/ray-serve.yaml) for one wavenet app."""
    return {"applications": [{
        "name": APP_NAME, "route_prefix": "/", "import_path": IMPORT_PATH,
        "args": settings_fields, "deployments": [{"name": DEPLOYMENT, **options}]}]}


def deploy(settings_fields: dict, options: dict, host: str, port: int,
           timeout_s: float = 300.0) -> None:
    """Start Serve's proxy on host:port and apply the config, as `serve deploy` does.

    Declarative on purpose: a new config that only changes the replica count keeps the
    running replicas (an imperative `serve.run` would replace them all). Returns once the
    application runs; replicas being removed may still be draining then.
    """
    from ray import serve
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeDeploySchema

    serve.start(http_options={"host": host, "port": port})
    config = ServeDeploySchema.model_validate(serve_config(settings_fields, options))
    _get_global_client().deploy_apps(config)
    deadline = time.monotonic() + timeout_s
    while True:
        app = serve.status().applications.get(APP_NAME)
        status = getattr(app, "status", None)
        if status == "RUNNING" and app.deployments[DEPLOYMENT].status == "HEALTHY":
            return
        if status == "DEPLOY_FAILED":
            raise RuntimeError(f"deploying {APP_NAME} failed: {app.message}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{APP_NAME} not running after {timeout_s:.0f} s: {status}")
        time.sleep(0.2)


def run(args: argparse.Namespace, settings_fields: dict) -> int:
    try:
        import ray
        from ray import serve
    except ImportError:
        print("error: --ray needs Ray Serve: pip install 'wavenet-server[ray]'",
              file=sys.stderr)
        return 2
    from server.scaleout.options import deployment_options
    from server.settings import Settings

    if args.replicas < 1:
        print("error: --replicas must be at least 1", file=sys.stderr)
        return 2
    settings = Settings(**settings_fields)
    options = deployment_options(settings, args.replicas, args.replica_cpus,
                                 args.replica_gpus, args.max_replicas)
    # Absolute model paths: replicas run elsewhere (another cwd, another node).
    fields = {**settings_fields, "models": [str(Path(p).expanduser().resolve())
                                            for p in settings.models]}
    try:
        start_cluster(args.ray_address)
    except Exception as exc:   # no cluster at --ray-address, no shared memory, ...
        print(f"error: Ray cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        deploy(fields, options, args.host, args.port)
        print(f"wavenet on Ray Serve: {args.replicas} replica(s) at "
              f"http://{args.host}:{args.port}", flush=True)
        stop.wait()
        print("draining replicas...", flush=True)
        serve.shutdown()
    finally:
        ray.shutdown()
    return 0
