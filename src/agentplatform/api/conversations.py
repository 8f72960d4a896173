"""Conversations and their messages. Owner-scoped; messages page by sequence number."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from agentplatform.api.deps import CurrentPrincipal, Cursor, Limit, ServicesDep
from agentplatform.api.schemas.common import ListPublic
from agentplatform.api.schemas.conversations import (
    ConversationCreate,
    ConversationPublic,
    ConversationUpdate,
    MessagePublic,
)
from agentplatform.errors import BadRequest

router = APIRouter(prefix="/api/conversations", tags=["conversations"])

Seq = Annotated[int | None, Query(ge=0, le=2**31 - 1)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_conversation(
    body: ConversationCreate, principal: CurrentPrincipal, services: ServicesDep
) -> ConversationPublic:
    conversation = await services.conversations.create(principal.user_id, body.agent_id, body.title)
    return ConversationPublic.model_validate(conversation)


@router.get("")
async def list_conversations(
    principal: CurrentPrincipal,
    services: ServicesDep,
    agent_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ListPublic[ConversationPublic]:
    """Most recently active first."""
    page = await services.conversations.list(
        principal.user_id, agent_id=agent_id, limit=limit, cursor=cursor
    )
    return ListPublic[ConversationPublic](
        items=[ConversationPublic.model_validate(c) for c in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/{conversation_id}")
async def read_conversation(
    conversation_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> ConversationPublic:
    conversation = await services.conversations.get(principal.user_id, conversation_id)
    return ConversationPublic.model_validate(conversation)


@router.patch("/{conversation_id}")
async def rename_conversation(
    conversation_id: str,
    body: ConversationUpdate,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> ConversationPublic:
    conversation = await services.conversations.rename(
        principal.user_id, conversation_id, body.title
    )
    return ConversationPublic.model_validate(conversation)


@router.delete("/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_conversation(
    conversation_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    await services.conversations.delete(principal.user_id, conversation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{conversation_id}/messages")
async def list_messages(
    conversation_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    limit: Limit = 50,
    before: Seq = None,
    after: Seq = None,
) -> ListPublic[MessagePublic]:
    """Messages in ascending ``seq``.

    No cursor: the latest ``limit``. ``before=N``: the ``limit`` before seq N, and
    ``next_cursor`` is the ``before`` for older history. ``after=N``: the ``limit`` after
    seq N, and ``next_cursor`` is the next ``after``.
    """
    if before is not None and after is not None:
        raise BadRequest("Give either 'before' or 'after', not both.")
    page = await services.messages.list(
        principal.user_id, conversation_id, limit=limit, before=before, after=after
    )
    runs = await services.runs.runs_of_messages([m.id for m in page.items if m.role == "assistant"])
    items = []
    for message in page.items:
        public = MessagePublic.model_validate(message)
        if message.id in runs:
            public.run_id = runs[message.id][0]
        items.append(public)
    return ListPublic[MessagePublic](items=items, next_cursor=page.next_cursor)
