"""Run payloads and the WebSocket frames a client may send."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from agentplatform.api.schemas.common import NoNul, StrictModel

MAX_MESSAGE_CHARS = 32_000
ObjectId = Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul]
Content = Annotated[str, StringConstraints(min_length=1, max_length=MAX_MESSAGE_CHARS), NoNul]
ClientMsgId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
]


class ChatInput(StrictModel):
    """A user's message to an agent (HTTP body of ``POST /api/agents/{id}/chat``)."""

    content: Content
    conversation_id: ObjectId | None = None
    client_msg_id: ClientMsgId | None = None


class TaskInput(StrictModel):
    """A task for an agent (``POST /api/agents/{id}/runs``)."""

    input: Content


class RunPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    agent_id: str
    conversation_id: str
    user_message_id: str
    assistant_message_id: str
    model: str
    status: str
    error_code: str | None
    error_message: str | None
    input_tokens: int | None
    output_tokens: int | None
    last_seq: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ChatFrame(ChatInput):
    type: Literal["chat"]
    agent_id: ObjectId


class CancelFrame(StrictModel):
    type: Literal["cancel"]
    run_id: ObjectId


class ResumeFrame(StrictModel):
    type: Literal["resume"]
    run_id: ObjectId
    after_seq: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0


class PingFrame(StrictModel):
    type: Literal["ping"]
    nonce: Annotated[str, StringConstraints(max_length=64)] | None = None


ClientFrame = Annotated[
    ChatFrame | CancelFrame | ResumeFrame | PingFrame, Field(discriminator="type")
]
CLIENT_FRAME: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)
