"""What a user is using right now and today: the counts limits and quotas are judged on.

Read-only and owner-scoped like every repository. A chat turn is one run, so "messages
since" counts the user's runs created since a moment, and tokens sum their recorded model
input and output tokens (a run still going has none recorded yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, or_, select

from agentplatform.store.db import Database
from agentplatform.store.repositories.runs import ACTIVE
from agentplatform.store.tables import Agent, Run


@dataclass(frozen=True, slots=True)
class RunUsage:
    active: int  # runs queued or in progress now
    messages: int  # turns started since the moment asked about
    tokens: int  # model tokens (in + out) of those turns


class UsageRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def runs(self, user_id: str, since: datetime) -> RunUsage:
        """Active runs, and turns and tokens since ``since``, in one query."""
        recent = Run.created_at >= since
        tokens = func.coalesce(Run.input_tokens, 0) + func.coalesce(Run.output_tokens, 0)
        query = select(
            func.coalesce(func.sum(case((Run.status.in_(ACTIVE), 1), else_=0)), 0),
            func.coalesce(func.sum(case((recent, 1), else_=0)), 0),
            func.coalesce(func.sum(case((recent, tokens), else_=0)), 0),
        ).where(Run.user_id == user_id, or_(Run.status.in_(ACTIVE), recent))
        async with self._db.read() as tx:
            active, messages, used = (await tx.execute(query)).one()
        return RunUsage(active=int(active), messages=int(messages), tokens=int(used))

    async def agents(self, user_id: str) -> int:
        """How many agents the user has (any status)."""
        query = select(func.count()).select_from(Agent).where(Agent.user_id == user_id)
        async with self._db.read() as tx:
            return int((await tx.execute(query)).scalar_one())
