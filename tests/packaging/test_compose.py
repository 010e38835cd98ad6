"""docker-compose.yml: valid against the Compose spec, both services, the same command as the
Dockerfile."""

from __future__ import annotations

import json
import shlex

import pytest

from tests.helpers.packaging import (
    COMPOSE_SCHEMA,
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


def test_compose_services():
    services = load_compose()["services"]
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


def test_compose_command_is_the_dockerfile_cmd():
    cmd = dockerfile_cmd()
    for name, service in load_compose()["services"].items():
        command = service.get("command", cmd)
        if isinstance(command, str):
            command = shlex.split(command)
        assert command == cmd, f"{name}: {command} != Dockerfile CMD {cmd}"
