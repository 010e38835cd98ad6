"""deploy/: the Serve config and the KubeRay RayService, linted without a cluster.

No network here for KubeRay's CRDs, so the RayService is checked structurally, and its
serveConfigV2 against Ray Serve's own config schema (ServeDeploySchema), like
deploy/ray-serve.yaml. Both follow the rules of server/scaleout/options.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML (dev extra) is not installed")
schema = pytest.importorskip("ray.serve.schema", reason="Ray Serve is not installed")

ROOT = Path(__file__).resolve().parents[2]
SERVE_CONFIG = ROOT / "deploy" / "ray-serve.yaml"
RAYSERVICE = ROOT / "deploy" / "kuberay-rayservice.yaml"
IMAGE_ROOT = "/app"        # the image copies models/ to /app/models
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def serve_config() -> dict:
    return yaml.safe_load(SERVE_CONFIG.read_text())


def rayservice() -> dict:
    return yaml.safe_load(RAYSERVICE.read_text())


def settings_of(app: dict):
    """The Settings a replica builds from the app's args, image paths mapped to here."""
    from server.settings import Settings

    args = dict(app["args"])
    args["models"] = [str(ROOT / Path(p).relative_to(IMAGE_ROOT)) for p in args["models"]]
    return Settings(**args)


def check_application(app: dict) -> None:
    from server.scaleout.launch import IMPORT_PATH
    from server.scaleout.options import (
        QUEUE_STREAMS,
        TARGET_SHARE,
        shutdown_timeout_s,
        streams_per_replica,
    )

    assert app["import_path"] == IMPORT_PATH
    settings = settings_of(app)
    streams = streams_per_replica(settings)
    (deployment,) = app["deployments"]
    assert deployment["max_ongoing_requests"] == streams
    auto = deployment["autoscaling_config"]
    assert auto["target_ongoing_requests"] == pytest.approx(TARGET_SHARE * streams, abs=0.5)
    assert 1 <= auto["min_replicas"] <= auto["initial_replicas"] <= auto["max_replicas"]
    assert deployment["max_queued_requests"] == QUEUE_STREAMS * streams
    assert deployment["graceful_shutdown_timeout_s"] >= shutdown_timeout_s(settings)
    assert deployment["graceful_shutdown_timeout_s"] >= settings.shutdown_grace_seconds
    assert deployment["health_check_period_s"] > 0 and deployment["health_check_timeout_s"] > 0
    actor = deployment["ray_actor_options"]
    assert actor["num_cpus"] >= 1 and "num_gpus" in actor
    env = actor["runtime_env"]["env_vars"]
    assert env["WAVENET_TORCH_THREADS"] == env["OMP_NUM_THREADS"] == str(int(actor["num_cpus"]))


def test_serve_config_validates_and_follows_the_rules():
    config = serve_config()
    schema.ServeDeploySchema.model_validate(config)
    assert config["http_options"]["port"] == 8000
    (app,) = config["applications"]
    check_application(app)


def test_serve_config_builds_the_app():
    """import_path names the application builder, and its args make Settings."""
    from ray.serve._private.utils import import_attr

    (app,) = serve_config()["applications"]
    builder = import_attr(app["import_path"])
    application = builder(app["args"])
    assert type(application).__name__ == "Application"
    settings_of(app)  # the args are valid Settings fields


def test_rayservice_is_well_formed():
    doc = rayservice()
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayService"
    assert DNS_LABEL.match(doc["metadata"]["name"])
    spec = doc["spec"]
    serve = yaml.safe_load(spec["serveConfigV2"])
    schema.ServeDeploySchema.model_validate(serve)
    assert serve["applications"] == serve_config()["applications"], (
        "deploy/kuberay-rayservice.yaml and deploy/ray-serve.yaml deploy different apps")
    check_application(serve["applications"][0])

    cluster = spec["rayClusterConfig"]
    from importlib import metadata

    assert cluster["rayVersion"] == metadata.version("ray")
    head = cluster["headGroupSpec"]
    groups = cluster["workerGroupSpecs"]
    assert head["rayStartParams"]["num-cpus"] == "0", "replicas belong on the workers"
    deployment = serve["applications"][0]["deployments"][0]
    pods = [("head", head["template"]["spec"])]
    for group in groups:
        assert DNS_LABEL.match(group["groupName"])
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert float(group["rayStartParams"]["num-cpus"]) >= (
            deployment["ray_actor_options"]["num_cpus"])
        spec_ = group["template"]["spec"]
        assert spec_["terminationGracePeriodSeconds"] >= (
            deployment["graceful_shutdown_timeout_s"])
        pods.append((group["groupName"], spec_))
    for start in [head["rayStartParams"]] + [g["rayStartParams"] for g in groups]:
        assert all(isinstance(v, str) for v in start.values()), "rayStartParams are strings"
        assert start["metrics-export-port"] == "8080"
    for name, pod in pods:
        volumes = {v["name"] for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            assert DNS_LABEL.match(container["name"]), name
            assert container["image"].endswith(":ray"), "the image with the `ray` extra"
            env = {e["name"]: e["value"] for e in container["env"]}
            assert env["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"] == (
                "server.scaleout.proxy:middlewares")
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports["serve"] == 8000 and ports["metrics"] == 8080
            assert all(isinstance(p, int) and 0 < p < 65536 for p in ports.values())
            assert {"requests", "limits"} <= set(container["resources"])
            assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes


def test_cli_rejects_a_bad_replica_count():
    out = subprocess.run([sys.executable, "-m", "wavenet_cli.main", "serve", "--ray",
                          "--replicas", "0"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "--replicas must be at least 1" in out.stderr, out
