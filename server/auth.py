"""Who is calling: API keys, checked before a request's body is read, and the client identity
that fairness and the per-client stream cap count by.

Keys: WAVENET_API_KEY, WAVENET_API_KEYS (several clients, each its own share) and
WAVENET_API_KEY_HASHES (`sha256:<hex>` digests: how Ray replicas get the keys without the
keys themselves appearing in a runtime_env). Every key is kept as its SHA-256 digest; a
presented key is hashed and compared with each in constant time.

`KeyGate` is a pure ASGI middleware: an HTTP request to /v1 (and to health and metrics with
`auth_health`) without a valid `Authorization: Bearer <key>` is answered 401 before its body
is read (and the connection closed, so the rest of the body is never parsed either).
WebSocket clients, which cannot always set headers (browsers), may instead put `"api_key"`
in their start message: the route checks that (`identify`).

The client identity is `key:<first 8 hex of the digest>` when keys are configured, else
`addr:<peer address>`; the gate puts it in `scope["state"]["client"]`.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from server.errors import ApiError

HASH_PREFIX = "sha256:"


def digest(key: str) -> bytes | None:
    """SHA-256 of a key; None for text that is not a key (a lone surrogate, say)."""
    try:
        return hashlib.sha256(key.encode()).digest()
    except UnicodeEncodeError:
        return None


def key_digests(settings) -> list[bytes]:
    """Every configured key as its digest, in a fixed order (api_key, api_keys, hashes)."""
    plain = ([settings.api_key] if settings.api_key is not None else []) + list(settings.api_keys)
    out = [digest(k.get_secret_value()) for k in plain]
    out += [bytes.fromhex(h.removeprefix(HASH_PREFIX)) for h in settings.api_key_hashes]
    return [d for d in out if d is not None]


def key_hashes(settings) -> list[str]:
    """The configured keys as `sha256:<hex>` (what WAVENET_API_KEY_HASHES takes)."""
    return [HASH_PREFIX + d.hex() for d in key_digests(settings)]


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def identify(settings, presented: str | None, address: str | None) -> str | None:
    """The client id for a presented key, or None when keys are configured and it is not
    one of them. Without keys, clients are told apart by address."""
    digests = key_digests(settings)
    if not digests:
        return f"addr:{address or 'unknown'}"
    given = digest(presented or "")
    found = None
    for expected in digests:           # every key compared, whichever matches
        if hmac.compare_digest(given or bytes(32), expected):
            found = expected
    if presented is None or given is None or found is None:
        return None
    return f"key:{found.hex()[:8]}"


def unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", "a valid API key is required "
                    "(Authorization: Bearer <key>)", headers={"WWW-Authenticate": "Bearer"})


def peer_address(scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


HEALTH_PATHS = ("/healthz", "/readyz", "/metrics")


def needs_key(settings, path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/") or (settings.auth_health
                                                        and path in HEALTH_PATHS)


class KeyGate:
    """ASGI middleware: the key of every /v1 HTTP request, before the body is read."""

    def __init__(self, app, settings):
        self.app, self.settings = app, settings

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})
        presented = bearer_token(header(scope, b"authorization"))
        client = identify(self.settings, presented, peer_address(scope))
        state["client"] = client
        if scope["type"] == "http" and client is None and needs_key(self.settings,
                                                                    scope["path"]):
            return await send_error(send, unauthorized(), state.get("request_id"))
        return await self.app(scope, receive, send)


async def send_error(send, error: ApiError, request_id: str | None) -> None:
    """An HTTP error response straight from a middleware; the connection closes after it,
    so a body the client is still sending is dropped unread."""
    body = json.dumps(error.body(request_id)).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
