"""API-key auth: when WAVENET_API_KEY is set, /v1 needs `Authorization: Bearer <key>`.

WebSocket clients, which cannot always set headers (browsers), may instead put
`"api_key"` in their start message. Keys are compared in constant time.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from server.deps import ServiceDep
from server.errors import ApiError


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def key_matches(settings, presented: str | None) -> bool:
    """True when no key is configured, or `presented` is the key."""
    if settings.api_key is None:
        return True
    if presented is None:
        return False
    expected = settings.api_key.get_secret_value().encode()
    try:
        given = presented.encode()
    except UnicodeEncodeError:       # a lone surrogate from a JSON start message
        return False
    return hmac.compare_digest(given, expected)


def unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", "a valid API key is required "
                    "(Authorization: Bearer <key>)", headers={"WWW-Authenticate": "Bearer"})


async def require_api_key(request: Request, service: ServiceDep) -> None:
    if not key_matches(service.settings, bearer_token(request.headers.get("authorization"))):
        raise unauthorized()


async def require_api_key_for_health(request: Request, service: ServiceDep) -> None:
    if service.settings.auth_health:
        await require_api_key(request, service)
