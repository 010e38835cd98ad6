"""`create_app(settings)`: the FastAPI service. Nothing heavy happens at import time.

The lifespan starts loading every checkpoint in the background (so /healthz answers and
/readyz says 503 until every model is loaded and warmed), and on the way out drains:
no new requests, live streams get `shutdown_grace_seconds` to finish, the rest end with
status "shutdown".
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from server.auth import KeyGate
from server.engine.service import Service
from server.errors import install_error_handlers
from server.middleware import RequestContext
from server.origins import OriginGate
from server.settings import Settings

log = logging.getLogger("wavenet")


class JsonFormatter(logging.Formatter):
    """Access lines are JSON already; other records become {"level", "logger", "message"}."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "wavenet.access":
            return record.getMessage()
        out = {"level": record.levelname.lower(), "logger": record.name,
               "message": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)


def configure_logging(level: str) -> None:
    root = logging.getLogger("wavenet")
    if not any(getattr(h, "_wavenet", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._wavenet = True
        root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level)
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        wyoming = None
        if settings.wyoming:
            from server.wyoming import WyomingServer

            wyoming = WyomingServer(service, settings.wyoming)
            await wyoming.start()
        try:
            yield
        finally:
            if wyoming is not None:
                await wyoming.stop()
            await service.close()

    app = FastAPI(title="WaveNet inference server", version="1", lifespan=lifespan,
                  description="Fast WaveNet generation, continuously batched and streamed.")
    app.state.service = service
    from server.wire.encoding import AudioOutput

    service.metrics.encoders.set_function(lambda: AudioOutput.live)
    install_error_handlers(app)

    from server.api import health, models, page, speech, stream, synthesize

    for module in (health, models, synthesize, speech, stream, page):
        app.include_router(module.router)
    app.add_middleware(KeyGate, settings=settings)
    app.add_middleware(OriginGate, settings=settings)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST"], allow_headers=["*"],
                           expose_headers=["X-Request-ID", "X-Sample-Rate", "X-Audio-Samples"])
    # outermost: request id, body cap, log line (the gates inside it answer with the id)
    app.add_middleware(RequestContext, metrics=service.metrics,
                       max_body_bytes=settings.max_body_bytes)
    return app
