"""server/scaleout/options.py: the Serve options `wavenet serve --ray` derives from the
settings (no cluster needed)."""

from __future__ import annotations

import pytest

from server.scaleout.options import (
    QUEUE_STREAMS,
    TARGET_SHARE,
    deployment_options,
    replica_env,
    shutdown_timeout_s,
)
from server.settings import Settings


@pytest.fixture
def two_models(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.safetensors").write_bytes(b"")
    return Settings(models=[tmp_path], max_streams=8, max_seconds=20,
                    shutdown_grace_seconds=3)


def test_fixed_replicas(two_models):
    opts = deployment_options(two_models, replicas=3, num_cpus=2, num_gpus=0.5)
    assert opts["num_replicas"] == 3 and "autoscaling_config" not in opts
    assert opts["max_ongoing_requests"] == 16          # 8 streams x 2 models
    assert opts["max_queued_requests"] == QUEUE_STREAMS * 16
    assert opts["graceful_shutdown_timeout_s"] == shutdown_timeout_s(two_models) == 28
    actor = opts["ray_actor_options"]
    assert actor["num_cpus"] == 2 and actor["num_gpus"] == 0.5
    assert actor["runtime_env"]["env_vars"]["WAVENET_TORCH_THREADS"] == "2"


def test_autoscaling_between_replicas_and_max(two_models):
    opts = deployment_options(two_models, replicas=1, max_replicas=4)
    assert "num_replicas" not in opts
    assert opts["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 4,
                                          "target_ongoing_requests": TARGET_SHARE * 16}


def test_replica_env_carries_settings_and_key_digests_not_keys(monkeypatch):
    monkeypatch.setenv("WAVENET_MAX_STREAMS", "4")
    monkeypatch.setenv("WAVENET_API_KEY", "secret")
    monkeypatch.setenv("WAVENET_API_KEYS", "other-key")
    monkeypatch.setenv("WAVENET_TORCH_THREADS", "3")
    monkeypatch.setenv("HOME_UNRELATED", "x")
    env = replica_env(1.0)
    assert env["WAVENET_MAX_STREAMS"] == "4" and env["WAVENET_TORCH_THREADS"] == "3"
    assert "WAVENET_API_KEY" not in env and "HOME_UNRELATED" not in env
    assert "WAVENET_API_KEYS" not in env
    assert "secret" not in str(env) and "other-key" not in str(env)
    assert env["WAVENET_API_KEY_HASHES"].count("sha256:") == 2
    assert env["OMP_NUM_THREADS"] == "1"


def test_a_replica_started_with_replica_env_requires_the_callers_keys(monkeypatch,
                                                                      checkpoints, tmp_path):
    """What a replica on a node without WAVENET_API_KEY gets: a real server started with
    replica_env() alone (the digests) refuses no key and accepts each of the caller's."""
    import httpx

    from tests.helpers.server import BACKEND, Server

    monkeypatch.setenv("WAVENET_API_KEY", "secret")
    monkeypatch.setenv("WAVENET_API_KEYS", "other-key")
    env = replica_env(1.0)
    for name in ("WAVENET_API_KEY", "WAVENET_API_KEYS"):
        monkeypatch.delenv(name)
    (tmp_path / "plain.safetensors").write_bytes((checkpoints / "plain.safetensors")
                                                 .read_bytes())
    srv = Server.ready(tmp_path, {**env, "WAVENET_BACKEND": BACKEND}, tmp_path / "replica.log")
    try:
        body = {"num_samples": 64, "format": "pcm"}
        url = srv.url + "/v1/synthesize"
        statuses = [httpx.post(url, json=body, headers=headers).status_code for headers in (
            {}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer secret"},
            {"Authorization": "Bearer other-key"})]
    finally:
        srv.stop()
    assert statuses == [401, 401, 200, 200]
