"""Reading a run's events from any point: from the bus while it holds them, else from storage.

The bus holds every event of a live run (and of a recently finished one). When it does not
know the run — it ended long ago, or it lives in a process this one cannot hear — the run's
row still tells how it ended: once it has, a terminal event is rebuilt from it (its ``seq`` is
the run's last), and the client reads the final text with the message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from agentplatform.domain.events import TERMINAL_STATUSES, DoneEvent, ErrorEvent, RunEvent
from agentplatform.errors import NotFound
from agentplatform.runtime.bus import EventBus
from agentplatform.store.repositories import RunRepository
from agentplatform.store.tables import Run


async def run_events(
    runs: RunRepository,
    bus: EventBus,
    user_id: str,
    run_id: str,
    after_seq: int = 0,
    *,
    poll: float = 1.0,
) -> AsyncIterator[RunEvent]:
    """Every event of the user's run after ``after_seq``; raises NotFound for others' runs."""
    owner = await bus.owner(run_id)
    if owner is not None:  # a live run of this process: the bus knows whose it is
        if owner != user_id:
            raise NotFound("Run not found.")
        async for event in bus.subscribe(run_id, after_seq):
            yield event
        return
    run = await runs.get(user_id, run_id)
    if await bus.known(run_id):
        async for event in bus.subscribe(run_id, after_seq):
            yield event
        return
    while run.status not in TERMINAL_STATUSES:
        await asyncio.sleep(poll)  # no bus to hear from: look again until the row says it ended
        if await bus.known(run_id):
            async for event in bus.subscribe(run_id, after_seq):
                yield event
            return
        run = await runs.get(user_id, run_id)
    if after_seq < run.last_seq:
        yield terminal_from_row(run)


def terminal_from_row(run: Run) -> RunEvent:
    if run.status in ("completed", "cancelled"):
        return DoneEvent(
            run_id=run.id,
            seq=run.last_seq,
            status="completed" if run.status == "completed" else "cancelled",
            conversation_id=run.conversation_id,
            message_id=run.assistant_message_id,
            input_tokens=run.input_tokens,
            output_tokens=run.output_tokens,
        )
    return ErrorEvent(
        run_id=run.id,
        seq=run.last_seq,
        status="interrupted" if run.status == "interrupted" else "failed",
        code=run.error_code or run.status,
        message=run.error_message or "The run did not complete.",
        conversation_id=run.conversation_id,
        message_id=run.assistant_message_id,
    )
