"""The Ray Serve deployment: each replica builds its own app with `create_app`.

`serve.ingress()` with `__serve_build_asgi_app__` builds the app inside the replica, so
nothing of it is pickled, and the app's lifespan (model loading, warm-up, drain) runs
there. A replica counts as started only once its models are loaded and warmed, and its
health check is the /readyz rule (`Service.readiness`). Responses carry `X-Served-By`
(the replica id) so a client, a log or a test can tell which replica answered.

`build_app(args)` is the application builder named by deploy/ray-serve.yaml; its args
are Settings fields (WAVENET_* environment variables fill the rest).
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from ray import serve

from server.settings import Settings

SERVED_BY = b"x-served-by"
LOAD_POLL_S = 0.05


def replica_name() -> str:
    """This replica's short id (Serve's actor name ends with it)."""
    return serve.get_replica_context().replica_id.unique_id


class ServedBy:
    """ASGI middleware: `X-Served-By: <replica id>` on every HTTP response and WS accept."""

    def __init__(self, app, name: str):
        self.app, self.header = app, (SERVED_BY, name.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)

        async def tagged(message):
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = {**message,
                           "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, tagged)

    def __getattr__(self, name):
        """Serve registers its 503 handlers through `add_exception_handler`: the app's."""
        return getattr(self.app, name)


def wait_for_models(app) -> None:
    """Wrap the app's lifespan: startup returns once loading has finished, and the
    metrics bridge runs while the app serves.

    Serve routes to a replica as soon as its startup returns; without this a replica
    would answer 503 "model_loading" while it warms up.
    """
    from server.scaleout.metrics_bridge import MetricsBridge

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application):
        async with inner(application) as state:
            service = application.state.service
            while not service.loaded:
                await asyncio.sleep(LOAD_POLL_S)
            ready, reason = service.readiness()
            if not ready:
                failed = {n: e.error for n, e in service.models.items()}
                raise RuntimeError(f"replica not ready ({reason}): {failed}")
            bridge = MetricsBridge(service.metrics.registry)
            bridge.start()
            try:
                yield state
            finally:
                await bridge.stop()

    app.router.lifespan_context = lifespan


@serve.deployment(name="wavenet")
@serve.ingress()
class WaveNetReplica:
    """One replica: one app, one engine per model. `overrides` are Settings fields."""

    def __init__(self, overrides: dict | None = None):
        self.settings = Settings(**(overrides or {}))
        self.wavenet_app = None

    def __serve_build_asgi_app__(self):
        from server.app import create_app

        self.wavenet_app = create_app(self.settings)
        wait_for_models(self.wavenet_app)
        return ServedBy(self.wavenet_app, replica_name())

    async def check_health(self) -> None:
        """/readyz's rule: raise (unhealthy) unless the service would answer 200."""
        ready, reason = self.wavenet_app.state.service.readiness()
        if not ready:
            raise RuntimeError(f"not ready: {reason}")


def build_app(args: dict | None = None):
    """Application builder for `serve run` / `serve deploy` (deploy/ray-serve.yaml)."""
    return WaveNetReplica.bind(dict(args or {}))
