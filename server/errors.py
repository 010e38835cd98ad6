"""Errors a client sees, in one place: `ApiError`, the HTTP code table, field names and the
exception handlers that turn every failure into `{"error": {code, message, field}}`.

Routes raise `ApiError`; they never import the app (which installs these handlers).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger("wavenet")

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type",
              422: "invalid_request", 429: "too_many_requests", 503: "unavailable"}
MAX_ERRORS = 20


class ApiError(Exception):
    """An error a client should see: HTTP status, machine code, message, offending field."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}

    def body(self, request_id: str | None = None) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        out = {"error": error}
        if request_id:
            out["request_id"] = request_id
        return out


def invalid(field: str, message: str) -> ApiError:
    """422 naming the field: the message starts with it, as validation errors do."""
    return ApiError(422, "invalid_request", f"{field}: {message}", field=field)


def field_name(loc) -> str:
    """("body", "mel", "list[list[float]]", 0, 3) -> "mel.0.3": the request field and the
    indices inside it, without pydantic's union-member tags."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    if not parts or not isinstance(parts[0], str):
        return "body"
    return ".".join([parts[0]] + [str(p) for p in parts[1:] if isinstance(p, int)])


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def error_response(request: Request, error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(_request_id(request)), status_code=error.status,
                        headers=error.headers)


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
