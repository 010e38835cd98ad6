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


def test_replica_env_carries_settings_but_not_the_api_key(monkeypatch):
    monkeypatch.setenv("WAVENET_MAX_STREAMS", "4")
    monkeypatch.setenv("WAVENET_API_KEY", "secret")
    monkeypatch.setenv("WAVENET_TORCH_THREADS", "3")
    monkeypatch.setenv("HOME_UNRELATED", "x")
    env = replica_env(1.0)
    assert env["WAVENET_MAX_STREAMS"] == "4" and env["WAVENET_TORCH_THREADS"] == "3"
    assert "WAVENET_API_KEY" not in env and "HOME_UNRELATED" not in env
    assert env["OMP_NUM_THREADS"] == "1"
