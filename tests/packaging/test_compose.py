"""docker-compose.yml: valid against the Compose spec, both services, the same command as the
Dockerfile."""

from __future__ import annotations

import json
import shlex

import pytest

from tests.helpers.packaging import (
    COMPOSE_SCHEMA,
    ROOT,
    dockerfile_cmd,
    load_compose,
)


def test_compose_file_validates_against_the_compose_spec():
    if not COMPOSE_SCHEMA.exists():
        pytest.skip(f"Compose JSON schema not found at {COMPOSE_SCHEMA} (CI provides it)")
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (dev extra) missing")
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(load_compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors
    )


def single_process_services() -> dict:
    """Every service but the `ray` profile's (its nodes run `ray start`)."""
    return {name: service for name, service in load_compose()["services"].items()
            if "ray" not in service.get("profiles", [])}


def test_compose_services():
    services = single_process_services()
    assert {"wavenet", "wavenet-gpu"} <= set(services)
    for name, service in services.items():
        assert service["build"]["context"] == "."
        assert service.get("build", {}).get("dockerfile", "Dockerfile") == "Dockerfile"
        env = service["environment"]
        assert all(key.startswith("WAVENET_") for key in env), env
        assert "WAVENET_API_KEY" in env
        # A read-only models volume at the folder WAVENET_MODELS names.
        volumes = [v for v in service["volumes"] if isinstance(v, dict)]
        models = [v for v in volumes if v["target"] == env["WAVENET_MODELS"]]
        assert models and models[0]["read_only"] is True, f"{name}: models volume"
        assert models[0]["source"] == "./models"
        health = service["healthcheck"]["test"]
        assert "/readyz" in " ".join(health if isinstance(health, list) else [health])
        assert any(str(p).endswith(":8000") for p in service["ports"]), service["ports"]
    assert "8000:8000" in services["wavenet"]["ports"]
    assert "profiles" not in services["wavenet"], "`docker compose up` must start the server"
    gpu = services["wavenet-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert {"BASE_IMAGE", "TORCH_INDEX"} <= set(gpu["build"]["args"])
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)


def test_compose_wyoming_service():
    """`docker compose --profile wyoming up wavenet-wyoming`: the same server, also serving
    Wyoming (WAVENET_WYOMING, as `wavenet serve --wyoming`) on a published port."""
    service = single_process_services()["wavenet-wyoming"]
    assert service["profiles"] == ["wyoming"]
    uri = service["environment"]["WAVENET_WYOMING"]
    assert uri == "tcp://0.0.0.0:10200" and "10200:10200" in service["ports"]


def test_compose_command_is_the_dockerfile_cmd():
    cmd = dockerfile_cmd()
    for name, service in single_process_services().items():
        command = service.get("command", cmd)
        if isinstance(command, str):
            command = shlex.split(command)
        assert command == cmd, f"{name}: {command} != Dockerfile CMD {cmd}"


def test_compose_ray_profile():
    """Head + worker from the image with the `ray` extra, the head deploying the app with
    `wavenet serve --ray`, the proxy middleware on every node, and a client."""
    services = load_compose()["services"]
    ray = {n: s for n, s in services.items() if "ray" in s.get("profiles", [])}
    assert set(ray) == {"ray-head", "ray-worker", "ray-client"}
    for name in ("ray-head", "ray-worker"):
        node = ray[name]
        assert node["build"]["args"]["EXTRAS"] == "ray" and node["image"] == "wavenet-server:ray"
        env = node["environment"]
        assert env["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"] == (
            "server.scaleout.proxy:middlewares")
        assert env["RAY_USAGE_STATS_ENABLED"] == "0"
        assert env["WAVENET_MODELS"] == "/app/models"
        assert node["shm_size"], "Ray's object store needs shared memory"
        assert any(v["target"] == "/app/models" and v["read_only"] for v in node["volumes"])
    head = " ".join(ray["ray-head"]["command"])
    assert "ray start --head --port=6379" in head
    assert "wavenet serve --ray --ray-address auto" in head and "--port 8000" in head
    assert "/readyz" in " ".join(ray["ray-head"]["healthcheck"]["test"])
    assert "--address=ray-head:6379" in ray["ray-worker"]["command"]
    client = ray["ray-client"]
    assert client["image"] == "wavenet-server:ray"
    assert "http://ray-head:8000" in client["command"]
    script = client["command"][1].replace("/deploy/", "")
    assert (ROOT / "deploy" / script).is_file()
    assert "ARG EXTRAS" in (ROOT / "Dockerfile").read_text()
