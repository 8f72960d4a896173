"""Agents, always scoped to their owner: another user's agent does not exist."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from agentplatform.domain.ids import new_id
from agentplatform.errors import NotFound
from agentplatform.store.db import Database
from agentplatform.store.repositories.paging import Page
from agentplatform.store.tables import Agent, AgentTag, utcnow

EDITABLE = frozenset(
    {
        "name",
        "description",
        "tags",
        "color",
        "icon",
        "instructions",
        "model",
        "temperature",
        "max_tokens",
        "status",
        "tools",
        "max_steps",
    }
)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class AgentRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, user_id: str, fields: Mapping[str, Any]) -> Agent:
        now = utcnow()
        agent = Agent(id=new_id(), user_id=user_id, created_at=now, updated_at=now)
        agent.total_runs = 0
        agent.successful_runs = 0
        _assign(agent, fields)
        async with self._db.transaction() as tx:
            tx.add(agent)
            await tx.flush()
            tx.add_all(AgentTag(agent_id=agent.id, tag=tag) for tag in agent.tags)
        return agent

    async def get(self, user_id: str, agent_id: str) -> Agent:
        async with self._db.read() as tx:
            return await owned_agent(tx, user_id, agent_id)

    async def list(
        self,
        user_id: str,
        *,
        tag: str | None = None,
        status: str | None = None,
        q: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Agent]:
        """Newest first; ``cursor`` is the id of the last agent of the previous page."""
        query = select(Agent).where(Agent.user_id == user_id)
        if cursor:
            query = query.where(Agent.id < cursor)
        if status:
            query = query.where(Agent.status == status)
        if tag:
            query = query.where(exists().where(AgentTag.agent_id == Agent.id, AgentTag.tag == tag))
        if q:
            pattern = _like_pattern(q)
            query = query.where(
                or_(
                    Agent.name.ilike(pattern, escape="\\"),
                    Agent.description.ilike(pattern, escape="\\"),
                )
            )
        query = query.order_by(Agent.id.desc()).limit(limit + 1)
        async with self._db.read() as tx:
            rows = list((await tx.scalars(query)).all())
        more = len(rows) > limit
        items = rows[:limit]
        return Page(items=items, next_cursor=items[-1].id if more and items else None)

    async def update(self, user_id: str, agent_id: str, changes: Mapping[str, Any]) -> Agent:
        async with self._db.transaction() as tx:
            agent = await owned_agent(tx, user_id, agent_id)
            _assign(agent, changes)
            agent.updated_at = utcnow()
            if "tags" in changes:
                await tx.execute(delete(AgentTag).where(AgentTag.agent_id == agent.id))
                tx.add_all(AgentTag(agent_id=agent.id, tag=tag) for tag in agent.tags)
        return agent

    async def delete(self, user_id: str, agent_id: str) -> None:
        async with self._db.transaction() as tx:
            agent = await owned_agent(tx, user_id, agent_id)
            await tx.delete(agent)


async def owned_agent(tx: AsyncSession, user_id: str, agent_id: str) -> Agent:
    agent = await tx.scalar(select(Agent).where(Agent.id == agent_id, Agent.user_id == user_id))
    if agent is None:
        raise NotFound("Agent not found.")
    return agent


def _assign(agent: Agent, fields: Mapping[str, Any]) -> None:
    for key, value in fields.items():
        if key not in EDITABLE:
            raise KeyError(key)
        setattr(agent, key, value)
