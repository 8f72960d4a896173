"""Run events: what a run tells the world, in order, each with ``(run_id, seq)``.

    delta        a fragment of the assistant's reply
    tool_call    the agent calls a tool
    tool_result  what the tool returned
    done         terminal: the run completed or was cancelled
    error        terminal: the run failed or was interrupted

Every run emits exactly one terminal event, and it is the last one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

RunStatus = Literal["queued", "in_progress", "completed", "failed", "cancelled", "interrupted"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled", "interrupted"})


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    seq: int


class DeltaEvent(_Event):
    type: Literal["delta"] = "delta"
    text: str


class ToolCallEvent(_Event):
    type: Literal["tool_call"] = "tool_call"
    call_id: str
    name: str
    arguments: dict[str, Any]


class ToolResultEvent(_Event):
    type: Literal["tool_result"] = "tool_result"
    call_id: str
    name: str
    content: str
    is_error: bool = False


class DoneEvent(_Event):
    type: Literal["done"] = "done"
    status: Literal["completed", "cancelled"]
    conversation_id: str
    message_id: str
    input_tokens: int | None = None
    output_tokens: int | None = None


class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    status: Literal["failed", "interrupted"]
    code: str
    message: str
    conversation_id: str
    message_id: str


RunEvent = Annotated[
    DeltaEvent | ToolCallEvent | ToolResultEvent | DoneEvent | ErrorEvent,
    Field(discriminator="type"),
]
TerminalEvent = DoneEvent | ErrorEvent
RUN_EVENT: TypeAdapter[RunEvent] = TypeAdapter(RunEvent)


def is_terminal(event: BaseModel) -> bool:
    return isinstance(event, DoneEvent | ErrorEvent)
