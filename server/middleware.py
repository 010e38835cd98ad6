"""Per-request plumbing as one pure ASGI middleware: request id, body cap, metrics, access log.

- Request id: a client's `X-Request-ID` (if short and plain) or a new one; it is put in
  `scope["state"]["request_id"]` and returned as the `X-Request-ID` response header.
- Body cap: a `Content-Length` over the limit is answered 413 at once; a body that turns
  out longer (chunked uploads) raises a 413 when the route reads past the limit.
- One JSON log line per HTTP request (WebSocket routes write their own) with whatever
  the route put in `scope["state"]["log"]` (model, samples, ttfa_ms, rtf, ...).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.exceptions import HTTPException

from server.metrics import Metrics

access_log = logging.getLogger("wavenet.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


def new_request_id(headers) -> str:
    for key, value in headers:
        if key == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.match(text):
                return text
    return uuid.uuid4().hex


def route_label(scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def log_request(fields: dict) -> None:
    access_log.info(json.dumps({k: v for k, v in fields.items() if v is not None},
                               separators=(",", ":")))


class RequestContext:
    def __init__(self, app, metrics: Metrics, max_body_bytes: int):
        self.app, self.metrics, self.max_body = app, metrics, max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})
        request_id = state["request_id"] = new_request_id(scope.get("headers", []))
        state["log"] = {}
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)

        started = time.perf_counter()
        status = {"code": 500}
        header_id = (b"x-request-id", request_id.encode())

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + [header_id]
            await send(message)

        try:
            length = dict(scope.get("headers", [])).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await self._too_large(send_with_id, request_id)
                return
            await self.app(scope, self._capped(receive), send_with_id)
        finally:
            self.metrics.requests.labels(route_label(scope), str(status["code"])).inc()
            log_request({"event": "request", "request_id": request_id,
                         "method": scope["method"], "path": scope["path"],
                         "status": status["code"],
                         "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                         **state["log"]})

    def _capped(self, receive):
        seen = 0

        async def wrapped():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise HTTPException(413, f"request body is larger than {self.max_body} bytes")
            return message

        return wrapped

    async def _too_large(self, send, request_id: str) -> None:
        body = json.dumps({"error": {"code": "body_too_large", "message":
                                     f"request body is larger than {self.max_body} bytes"},
                           "request_id": request_id}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
