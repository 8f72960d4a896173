"""Runs: starting a turn (user message first, then the run), progress, and exactly one end.

``begin_turn`` commits the user's message, the assistant's ``streaming`` placeholder and a
``queued`` run in one transaction, before any model is called. ``finish`` moves a run to its
terminal state only if it has none yet, and moves the agent's counters in that same
transaction, so each run is counted exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agentplatform.domain.ids import new_id
from agentplatform.errors import Conflict, NotFound
from agentplatform.store.db import Database
from agentplatform.store.repositories.agents import owned_agent
from agentplatform.store.repositories.conversations import owned_conversation
from agentplatform.store.repositories.messages import new_message, reserve_seqs
from agentplatform.store.tables import Agent, Conversation, Message, Run, utcnow

ACTIVE = ("queued", "in_progress")
MESSAGE_STATUS = {
    "completed": "complete",
    "failed": "failed",
    "cancelled": "cancelled",
    "interrupted": "interrupted",
}
HISTORY_LIMIT = 400


@dataclass(frozen=True, slots=True)
class Turn:
    conversation_id: str
    user_message_id: str
    assistant_message_id: str
    run: Run
    duplicate: bool


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a run needs to call the model: the agent and the history up to this turn."""

    agent: Agent
    history: list[Message]  # oldest first, ends with this turn's user message


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    text: str
    last_seq: int
    parts: list[dict[str, Any]] | None = None
    error_code: str | None = None
    error_message: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


def title_from(content: str) -> str:
    first_line = content.strip().splitlines()[0] if content.strip() else ""
    return first_line[:60].strip() or "New conversation"


class RunRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def begin_turn(
        self,
        user_id: str,
        agent_id: str,
        content: str,
        *,
        conversation_id: str | None = None,
        client_msg_id: str | None = None,
    ) -> Turn:
        try:
            return await self._begin(user_id, agent_id, content, conversation_id, client_msg_id)
        except IntegrityError:
            # A concurrent request with the same client_msg_id won; answer with its turn.
            if not (client_msg_id and conversation_id):
                raise
            return await self._begin(user_id, agent_id, content, conversation_id, client_msg_id)

    async def _begin(
        self,
        user_id: str,
        agent_id: str,
        content: str,
        conversation_id: str | None,
        client_msg_id: str | None,
    ) -> Turn:
        async with self._db.transaction() as tx:
            agent = await owned_agent(tx, user_id, agent_id)
            if agent.status != "active":
                raise Conflict("This agent is archived; make it active to chat with it.")
            conversation = await _conversation(tx, user_id, agent, conversation_id, content)
            if client_msg_id:
                existing = await _existing_turn(tx, conversation.id, client_msg_id)
                if existing is not None:
                    return existing
            first = await reserve_seqs(tx, user_id, conversation.id, 2)
            question = new_message(
                conversation.id, first, "user", content, "complete", client_msg_id
            )
            answer = new_message(conversation.id, first + 1, "assistant", "", "streaming", None)
            run = Run(
                id=new_id(),
                user_id=user_id,
                agent_id=agent.id,
                conversation_id=conversation.id,
                user_message_id=question.id,
                assistant_message_id=answer.id,
                model=agent.model,
                status="queued",
                last_seq=0,
                created_at=utcnow(),
            )
            tx.add_all([question, answer, run])
        return Turn(conversation.id, question.id, answer.id, run, duplicate=False)

    async def get(self, user_id: str, run_id: str) -> Run:
        async with self._db.read() as tx:
            run = await tx.scalar(select(Run).where(Run.id == run_id, Run.user_id == user_id))
        if run is None:
            raise NotFound("Run not found.")
        return run

    async def runs_of_messages(self, message_ids: list[str]) -> dict[str, tuple[str, str]]:
        """``{assistant message id: (run id, run status)}`` for the given messages."""
        if not message_ids:
            return {}
        async with self._db.read() as tx:
            rows = await tx.execute(
                select(Run.assistant_message_id, Run.id, Run.status).where(
                    Run.assistant_message_id.in_(message_ids)
                )
            )
            return {message_id: (run_id, status) for message_id, run_id, status in rows}

    async def start(self, run_id: str, worker_id: str) -> RunContext | None:
        """Mark a queued run ``in_progress`` and load its context; None if it already ended."""
        now = utcnow()
        async with self._db.transaction() as tx:
            started = (
                await tx.execute(
                    update(Run)
                    .where(Run.id == run_id, Run.status == "queued")
                    .values(
                        status="in_progress", started_at=now, heartbeat_at=now, worker_id=worker_id
                    )
                    .returning(Run.agent_id, Run.conversation_id, Run.user_message_id)
                )
            ).first()
            if started is None:
                return None
            agent_id, conversation_id, user_message_id = started
            agent = await tx.get_one(Agent, agent_id)
            question_seq = (
                select(Message.seq).where(Message.id == user_message_id).scalar_subquery()
            )
            rows = await tx.scalars(
                select(Message)
                .where(
                    Message.conversation_id == conversation_id,
                    Message.seq <= question_seq,
                    Message.status != "streaming",
                )
                .order_by(Message.seq.desc())
                .limit(HISTORY_LIMIT)
            )
            history = list(rows.all())
        history.reverse()
        return RunContext(agent=agent, history=history)

    async def heartbeat(
        self, run_id: str, text: str, parts: list[dict[str, Any]] | None, last_seq: int
    ) -> None:
        """Save the reply so far, so a crash loses at most one heartbeat of text."""
        async with self._db.transaction() as tx:
            run = await tx.scalar(
                update(Run)
                .where(Run.id == run_id, Run.status == "in_progress")
                .values(heartbeat_at=utcnow(), last_seq=last_seq)
                .returning(Run.assistant_message_id)
            )
            if run is not None:
                await tx.execute(
                    update(Message)
                    .where(Message.id == run, Message.status == "streaming")
                    .values(content=text, parts=parts, updated_at=utcnow())
                )

    async def finish(self, run_id: str, outcome: Outcome) -> Run | None:
        """Record the terminal state; returns None when the run had already ended."""
        now = utcnow()
        async with self._db.transaction() as tx:
            ended = await tx.scalar(
                update(Run)
                .where(Run.id == run_id, Run.status.in_(ACTIVE))
                .values(
                    status=outcome.status,
                    finished_at=now,
                    heartbeat_at=now,
                    last_seq=outcome.last_seq,
                    error_code=outcome.error_code,
                    error_message=(outcome.error_message or "")[:500] or None,
                    input_tokens=outcome.input_tokens,
                    output_tokens=outcome.output_tokens,
                )
                .returning(Run.id)
            )
            if ended is None:
                return None
            run = await tx.get_one(Run, run_id)
            await _close_message(tx, run.assistant_message_id, outcome)
            await _count(tx, run.agent_id, outcome.status)
        return run

    async def interrupt_stale(self, stale_before: datetime, *, all_active: bool = False) -> int:
        """End runs whose process is gone: no heartbeat since ``stale_before`` (or every one)."""
        query = select(Run).where(Run.status.in_(ACTIVE))
        if not all_active:
            query = query.where(
                (Run.heartbeat_at < stale_before)
                | (Run.heartbeat_at.is_(None) & (Run.created_at < stale_before))
            )
        async with self._db.transaction() as tx:
            stale = list((await tx.scalars(query.limit(500))).all())
        count = 0
        for run in stale:
            text, parts = await self._partial(run.assistant_message_id)
            outcome = Outcome(
                status="interrupted",
                text=text,
                parts=parts,
                last_seq=run.last_seq,
                error_code="interrupted",
                error_message="The server stopped before the reply was finished.",
            )
            if await self.finish(run.id, outcome) is not None:
                count += 1
        return count

    async def _partial(self, message_id: str) -> tuple[str, list[dict[str, Any]] | None]:
        async with self._db.transaction() as tx:
            row = (
                await tx.execute(
                    select(Message.content, Message.parts).where(Message.id == message_id)
                )
            ).first()
        return (row[0] or "", row[1]) if row else ("", None)


async def _conversation(
    tx: AsyncSession, user_id: str, agent: Agent, conversation_id: str | None, content: str
) -> Conversation:
    if conversation_id:
        conversation = await owned_conversation(tx, user_id, conversation_id)
        if conversation.agent_id != agent.id:
            raise NotFound("Conversation not found for this agent.")
        return conversation
    now = utcnow()
    conversation = Conversation(
        id=new_id(),
        user_id=user_id,
        agent_id=agent.id,
        title=title_from(content),
        message_count=0,
        created_at=now,
        updated_at=now,
    )
    tx.add(conversation)
    await tx.flush()
    return conversation


async def _existing_turn(tx: AsyncSession, conversation_id: str, client_msg_id: str) -> Turn | None:
    message = await tx.scalar(
        select(Message).where(
            Message.conversation_id == conversation_id, Message.client_msg_id == client_msg_id
        )
    )
    if message is None:
        return None
    run = await tx.scalar(select(Run).where(Run.user_message_id == message.id))
    if run is None:
        raise Conflict("That message was stored without a run.")
    return Turn(conversation_id, message.id, run.assistant_message_id, run, duplicate=True)


async def _close_message(tx: AsyncSession, message_id: str, outcome: Outcome) -> None:
    values: dict[str, Any] = {
        "content": outcome.text,
        "status": MESSAGE_STATUS[outcome.status],
        "updated_at": utcnow(),
    }
    if outcome.parts is not None:
        values["parts"] = outcome.parts
    await tx.execute(update(Message).where(Message.id == message_id).values(**values))


async def _count(tx: AsyncSession, agent_id: str, status: str) -> None:
    values = {"total_runs": Agent.total_runs + 1}
    if status == "completed":
        values["successful_runs"] = Agent.successful_runs + 1
    await tx.execute(update(Agent).where(Agent.id == agent_id).values(**values))
