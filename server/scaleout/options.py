"""The deployment's Serve options, derived from the server's settings in one place.

`wavenet serve --ray` and the tests use `deployment_options`; deploy/ray-serve.yaml
writes the same numbers out by hand, and tests/ray/test_deploy_files.py checks that they
follow these rules.
"""

from __future__ import annotations

import math
import os

from server.settings import Settings

TARGET_SHARE = 0.7          # autoscale when replicas are ~70 % busy on average
SHUTDOWN_MARGIN_S = 5.0     # on top of the drain grace, for lifespan shutdown itself
QUEUE_STREAMS = 4           # a proxy queues this many x streams per replica, then 503s


def streams_per_replica(settings: Settings) -> int:
    """Live streams one replica holds: `max_streams` for each model it serves."""
    return settings.max_streams * max(1, len(settings.checkpoint_paths()))


def shutdown_timeout_s(settings: Settings) -> float:
    """Serve first waits for a leaving replica's requests (a stream lasts about its audio,
    at most `max_seconds`, when generated in real time), then its lifespan drains with
    `shutdown_grace_seconds`; Ray kills it after this long."""
    return settings.max_seconds + settings.shutdown_grace_seconds + SHUTDOWN_MARGIN_S


SECRET_ENV = ("WAVENET_API_KEY", "WAVENET_API_KEYS")


def replica_env(num_cpus: float) -> dict[str, str]:
    """Environment for every replica, on whichever node: the caller's WAVENET_* settings,
    and one compute thread per CPU the replica reserves unless told otherwise.

    The API keys go as their SHA-256 digests (WAVENET_API_KEY_HASHES), never as keys: a
    runtime_env is visible in Ray's state API and dashboard, and a digest is all a replica
    needs to check a key. So every replica, on any node, requires the caller's keys."""
    from server.auth import key_hashes

    threads = str(max(1, math.floor(num_cpus)))
    env = {k: v for k, v in os.environ.items()
           if k.startswith("WAVENET_") and k not in SECRET_ENV}
    hashes = key_hashes(Settings())
    if hashes:
        env["WAVENET_API_KEY_HASHES"] = ",".join(hashes)
    env.setdefault("WAVENET_TORCH_THREADS", threads)
    env.setdefault("OMP_NUM_THREADS", threads)
    return env


def deployment_options(settings: Settings, replicas: int, num_cpus: float = 1.0,
                       num_gpus: float = 0.0, max_replicas: int | None = None) -> dict:
    """`Deployment.options(**...)`: fixed `replicas`, or autoscaling up to `max_replicas`."""
    streams = streams_per_replica(settings)
    options = dict(
        max_ongoing_requests=streams,
        # per proxy (one per node), and independent of the replica count, so that scaling
        # is a light update that keeps the running replicas
        max_queued_requests=QUEUE_STREAMS * streams,
        graceful_shutdown_timeout_s=shutdown_timeout_s(settings),
        graceful_shutdown_wait_loop_s=0.5,
        health_check_period_s=5.0,
        health_check_timeout_s=10.0,
        ray_actor_options={"num_cpus": num_cpus, "num_gpus": num_gpus,
                           "runtime_env": {"env_vars": replica_env(num_cpus)}},
    )
    if max_replicas and max_replicas > replicas:
        options["autoscaling_config"] = {
            "min_replicas": replicas, "max_replicas": max_replicas,
            "target_ongoing_requests": round(TARGET_SHARE * streams, 1)}
    else:
        options["num_replicas"] = replicas
    return options
