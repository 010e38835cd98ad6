"""The one way a route reaches the service: `service: ServiceDep` (HTTP and WebSocket)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from server.engine.service import Service


def get_service(connection: HTTPConnection) -> Service:
    return connection.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
