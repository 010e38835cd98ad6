"""In-process app checks (no model needed): settings from the environment, optional auth on
health routes, CORS, and a crash that never shows the client a traceback."""

from __future__ import annotations

import asyncio

import httpx

from server.app import create_app
from server.settings import BUNDLED_MODELS, Settings


def call(app, method: str, path: str, **kw) -> httpx.Response:
    async def main():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.request(method, path, **kw)

    return asyncio.run(main())


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("WAVENET_MODELS", raising=False)
    assert Settings().models == [BUNDLED_MODELS]
    monkeypatch.setenv("WAVENET_MODELS", f"{tmp_path}/a.safetensors,{tmp_path}")
    monkeypatch.setenv("WAVENET_CORS_ORIGINS", '["http://a.example"]')
    monkeypatch.setenv("WAVENET_API_KEY", "zq-secret-9")
    monkeypatch.setenv("WAVENET_MAX_STREAMS", "4")
    (tmp_path / "b.safetensors").write_bytes(b"")
    s = Settings()
    assert s.cors_origins == ["http://a.example"] and s.max_streams == 4
    assert s.api_key.get_secret_value() == "zq-secret-9" and "zq-secret" not in repr(s)
    assert s.checkpoint_paths() == [tmp_path / "a.safetensors", tmp_path / "b.safetensors"]
    monkeypatch.setenv("WAVENET_API_KEY", "")      # what compose passes for an unset key
    assert Settings().api_key is None


def test_every_backend_precision_is_a_setting(monkeypatch):
    """The server takes every precision some backend runs (bf16a and int8a were once
    refused by a hand-kept list)."""
    import pytest

    from wavenet_core.generation.registry import BACKEND_PRECISIONS

    for precision in sorted({p for ps in BACKEND_PRECISIONS.values() for p in ps}):
        monkeypatch.setenv("WAVENET_PRECISION", precision)
        assert Settings().precision == precision
    monkeypatch.setenv("WAVENET_PRECISION", "int4")
    with pytest.raises(ValueError, match="int8a"):
        Settings()


def test_auth_health_and_cors():
    app = create_app(Settings(models=[], api_key="k", auth_health=True,
                              cors_origins=["http://a.example"]))
    assert call(app, "GET", "/healthz").status_code == 401
    assert call(app, "GET", "/metrics").status_code == 401
    ok = call(app, "GET", "/healthz", headers={"Authorization": "Bearer k",
                                               "Origin": "http://a.example"})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "http://a.example"
    assert "x-request-id" in ok.headers["access-control-expose-headers"].lower()


def test_internal_error_is_json_without_traceback(monkeypatch):
    app = create_app(Settings(models=[]))

    def boom(name):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.state.service, "get", boom)
    r = call(app, "POST", "/v1/synthesize", json={"seconds": 1})
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    assert "secret" not in r.text and "Traceback" not in r.text
