"""Conversations, scoped to their owner; most recently active first."""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from agentplatform.domain.ids import new_id
from agentplatform.errors import NotFound
from agentplatform.store.db import Database
from agentplatform.store.repositories.paging import Page, decode_cursor, encode_cursor
from agentplatform.store.tables import Agent, Conversation, utcnow


class ConversationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, user_id: str, agent_id: str, title: str = "") -> Conversation:
        now = utcnow()
        conversation = Conversation(
            id=new_id(),
            user_id=user_id,
            agent_id=agent_id,
            title=title,
            message_count=0,
            created_at=now,
            updated_at=now,
        )
        async with self._db.transaction() as tx:
            owner = await tx.scalar(
                select(Agent.id).where(Agent.id == agent_id, Agent.user_id == user_id)
            )
            if owner is None:
                raise NotFound("Agent not found.")
            tx.add(conversation)
        return conversation

    async def get(self, user_id: str, conversation_id: str) -> Conversation:
        async with self._db.read() as tx:
            return await owned_conversation(tx, user_id, conversation_id)

    async def list(
        self,
        user_id: str,
        *,
        agent_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Conversation]:
        query = select(Conversation).where(Conversation.user_id == user_id)
        if agent_id:
            query = query.where(Conversation.agent_id == agent_id)
        if cursor:
            at, last_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    Conversation.updated_at < at,
                    and_(Conversation.updated_at == at, Conversation.id < last_id),
                )
            )
        query = query.order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        async with self._db.read() as tx:
            rows = list((await tx.scalars(query.limit(limit + 1))).all())
        items = rows[:limit]
        more = len(rows) > limit
        last = items[-1] if items else None
        next_cursor = encode_cursor(last.updated_at, last.id) if more and last else None
        return Page(items=items, next_cursor=next_cursor)

    async def rename(self, user_id: str, conversation_id: str, title: str) -> Conversation:
        async with self._db.transaction() as tx:
            conversation = await owned_conversation(tx, user_id, conversation_id)
            conversation.title = title
            conversation.updated_at = utcnow()
        return conversation

    async def delete(self, user_id: str, conversation_id: str) -> None:
        async with self._db.transaction() as tx:
            conversation = await owned_conversation(tx, user_id, conversation_id)
            await tx.delete(conversation)


async def owned_conversation(tx: AsyncSession, user_id: str, conversation_id: str) -> Conversation:
    conversation = await tx.scalar(
        select(Conversation).where(
            Conversation.id == conversation_id, Conversation.user_id == user_id
        )
    )
    if conversation is None:
        raise NotFound("Conversation not found.")
    return conversation
