"""GET /v1/models: every configured model, loaded or not, with what a client needs."""

from __future__ import annotations

from fastapi import APIRouter

from server.deps import ServiceDep
from server.errors import ApiError
from server.wire.schemas import ModelInfo, ModelList

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=ModelList)
async def list_models(service: ServiceDep) -> ModelList:
    return ModelList(data=[_info(service, entry) for entry in service.models.values()])


@router.get("/models/{name}", response_model=ModelInfo)
async def get_model(name: str, service: ServiceDep) -> ModelInfo:
    entry = service.models.get(name)
    if entry is None:
        raise ApiError(404, "model_not_found", f"no model named {name!r}", field="name")
    return _info(service, entry)


def _info(service, entry) -> ModelInfo:
    info = entry.info()
    info.aliases = service.aliases(entry)
    return info
