"""Messages: one row each, numbered by ``seq`` within their conversation.

Appending bumps the conversation's ``message_count`` with an atomic ``UPDATE … RETURNING``
and uses the result as the new ``seq``, so two writers never get the same number and no
conversation is ever rewritten as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agentplatform.domain.ids import new_id
from agentplatform.errors import NotFound
from agentplatform.store.db import Database
from agentplatform.store.repositories.conversations import owned_conversation
from agentplatform.store.repositories.paging import Page
from agentplatform.store.tables import Conversation, Message, utcnow


class MessageRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(
        self,
        user_id: str,
        conversation_id: str,
        *,
        role: str,
        content: str,
        status: str = "complete",
        client_msg_id: str | None = None,
    ) -> Message:
        async with self._db.transaction() as tx:
            first = await reserve_seqs(tx, user_id, conversation_id, 1)
            message = new_message(conversation_id, first, role, content, status, client_msg_id)
            tx.add(message)
        return message

    async def append_many(
        self, user_id: str, conversation_id: str, turns: Sequence[tuple[str, str]]
    ) -> int:
        """Append complete messages in one transaction (imports, seeding); returns the count."""
        if not turns:
            return 0
        async with self._db.transaction() as tx:
            first = await reserve_seqs(tx, user_id, conversation_id, len(turns))
            tx.add_all(
                new_message(conversation_id, first + i, role, content, "complete", None)
                for i, (role, content) in enumerate(turns)
            )
        return len(turns)

    async def list(
        self,
        user_id: str,
        conversation_id: str,
        *,
        limit: int = 50,
        before: int | None = None,
        after: int | None = None,
    ) -> Page[Message]:
        """A page in ascending ``seq`` order.

        With ``after``: the next ``limit`` messages after that seq (cursor moves forward).
        Otherwise: the last ``limit`` messages before ``before`` (or the end); the cursor
        points to older history.
        """
        async with self._db.read() as tx:
            await owned_conversation(tx, user_id, conversation_id)
            query = select(Message).where(Message.conversation_id == conversation_id)
            if after is not None:
                query = query.where(Message.seq > after).order_by(Message.seq.asc())
            else:
                if before is not None:
                    query = query.where(Message.seq < before)
                query = query.order_by(Message.seq.desc())
            rows = list((await tx.scalars(query.limit(limit + 1))).all())
        more = len(rows) > limit
        items = rows[:limit]
        if after is None:
            items.reverse()
        if not more or not items:
            return Page(items=items, next_cursor=None)
        edge = items[-1].seq if after is not None else items[0].seq
        return Page(items=items, next_cursor=str(edge))


async def reserve_seqs(tx: AsyncSession, user_id: str, conversation_id: str, count: int) -> int:
    """Claim ``count`` sequence numbers; returns the first."""
    last = await tx.scalar(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.user_id == user_id)
        .values(message_count=Conversation.message_count + count, updated_at=utcnow())
        .returning(Conversation.message_count)
    )
    if last is None:
        raise NotFound("Conversation not found.")
    return int(last) - count + 1


def new_message(
    conversation_id: str,
    seq: int,
    role: str,
    content: str,
    status: str,
    client_msg_id: str | None,
) -> Message:
    now = utcnow()
    return Message(
        id=new_id(),
        conversation_id=conversation_id,
        seq=seq,
        role=role,
        content=content,
        status=status,
        client_msg_id=client_msg_id,
        created_at=now,
        updated_at=now,
    )
