"""The models usable now, from every configured provider."""

from __future__ import annotations

from fastapi import APIRouter

from agentplatform.api.deps import CurrentPrincipal, ServicesDep
from agentplatform.api.schemas.models import ModelList, ModelPublic

router = APIRouter(prefix="/api/models", tags=["models"])


@router.get("")
async def list_models(principal: CurrentPrincipal, services: ServicesDep) -> ModelList:
    models = await services.registry.list_models()
    return ModelList(
        items=[
            ModelPublic(
                id=m.ref,
                provider=m.provider,
                name=m.name,
                label=m.label,
                offline_demo=m.offline_demo,
                context_tokens=m.context_tokens,
            )
            for m in models
        ],
        default=services.registry.default_ref(),
    )
