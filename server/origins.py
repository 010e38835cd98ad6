"""Which web pages may use this server: the browser's `Origin` header, checked for every
WebSocket and every /v1 HTTP request (issue 27: with no key, any page a user opened could
spend the server's compute through the user's browser).

Allowed: requests without an Origin (not from a browser page), the server's own page (the
Origin is the Host the request came to), and the origins in WAVENET_ALLOWED_ORIGINS (and
WAVENET_CORS_ORIGINS, which lets those pages read the responses); `*` allows every origin.
A refused WebSocket is closed before it is accepted (the browser sees HTTP 403), a refused
HTTP request is a 403 `origin_not_allowed`.

`exposure_warning` is what `wavenet serve` logs when it listens beyond loopback with no key.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from server.auth import header, key_digests, needs_key, send_error
from server.errors import ApiError


def allowed_origins(settings) -> set[str]:
    return {o.rstrip("/") for o in [*settings.allowed_origins, *settings.cors_origins]}


def origin_allowed(settings, scope) -> bool:
    origin = header(scope, b"origin")
    if origin is None:
        return True
    allowed = allowed_origins(settings)
    if "*" in allowed or origin.rstrip("/") in allowed:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and \
        parts.netloc.lower() == (header(scope, b"host") or "").lower()


def refused(origin: str | None) -> ApiError:
    return ApiError(403, "origin_not_allowed", f"origin {origin!r} may not use this server "
                    "(WAVENET_ALLOWED_ORIGINS)")


class OriginGate:
    """ASGI middleware: refuses WebSockets and /v1 requests from pages not allowed."""

    def __init__(self, app, settings):
        self.app, self.settings = app, settings

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind not in ("http", "websocket") or origin_allowed(self.settings, scope):
            return await self.app(scope, receive, send)
        if kind == "websocket":
            await receive()                              # websocket.connect
            return await send({"type": "websocket.close", "code": 1008})
        if scope["method"] == "OPTIONS" or not needs_key(self.settings, scope["path"]):
            return await self.app(scope, receive, send)  # CORS preflights, page, health
        state = scope.get("state", {})
        await send_error(send, refused(header(scope, b"origin")), state.get("request_id"))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(settings, host: str) -> str | None:
    """A warning when the server listens beyond loopback and needs no key."""
    if key_digests(settings) or is_loopback(host):
        return None
    return (f"listening on {host} with no API key: anyone who can reach this address can "
            "use the server's compute; set WAVENET_API_KEY (or WAVENET_API_KEYS)")
