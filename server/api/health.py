"""GET /healthz (liveness), /readyz (models loaded and warmed), /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from server.deps import ServiceDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(service: ServiceDep) -> JSONResponse:
    ready, reason = service.readiness()
    body = {"status": reason,
            "models": {name: entry.status for name, entry in service.models.items()}}
    headers = {} if ready else {"Retry-After": "1"}
    return JSONResponse(body, status_code=200 if ready else 503, headers=headers)


@router.get("/metrics")
async def metrics(service: ServiceDep) -> Response:
    m = service.metrics
    return Response(m.render(), media_type=m.content_type)
