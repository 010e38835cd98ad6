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

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from server.middleware import RequestContext
from server.schemas import ApiError
from server.service import Service
from server.settings import Settings

log = logging.getLogger("wavenet")

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type",
              422: "invalid_request", 429: "too_many_requests", 503: "unavailable"}
MAX_ERRORS = 20


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


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def error_response(request: Request, error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(_request_id(request)), status_code=error.status,
                        headers=error.headers)


def field_name(loc) -> str:
    """("body", "mel", "list[list[float]]", 0, 3) -> "mel.0.3": the request field and the
    indices inside it, without pydantic's union-member tags."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    if not parts or not isinstance(parts[0], str):
        return "body"
    return ".".join([parts[0]] + [str(p) for p in parts[1:] if isinstance(p, int)])


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        details = [{"field": field_name(e.get("loc", ())), "message": e.get("msg", "")}
                   for e in errors[:MAX_ERRORS]]
        first = details[0] if details else {"field": "body", "message": "invalid request"}
        body = ApiError(422, "invalid_request", f"{first['field']}: {first['message']}",
                        field=first["field"]).body(_request_id(request))
        body["error"]["details"] = details
        return JSONResponse(body, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        code = HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(request, ApiError(exc.status_code, code, message,
                                                headers=dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("unhandled error in %s %s", request.method, request.url.path,
                  exc_info=(type(exc), exc, exc.__traceback__))
        return error_response(request, ApiError(500, "internal_error",
                                                "internal server error; see the server log"))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level)
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        try:
            yield
        finally:
            await service.close()

    app = FastAPI(title="WaveNet inference server", version="1", lifespan=lifespan,
                  description="Fast WaveNet generation, continuously batched and streamed.")
    app.state.service = service
    install_error_handlers(app)

    from server.routes import health, models, page, stream, synthesize

    for module in (health, models, synthesize, stream, page):
        app.include_router(module.router)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST"], allow_headers=["*"],
                           expose_headers=["X-Request-ID", "X-Sample-Rate", "X-Audio-Samples"])
    app.add_middleware(RequestContext, metrics=service.metrics,
                       max_body_bytes=settings.max_body_bytes)
    return app
