"""Runs over HTTP: read one, stream its events (SSE), cancel it, and chat without a socket."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, status
from fastapi.responses import StreamingResponse

from agentplatform.api.deps import CurrentPrincipal, ServicesDep
from agentplatform.api.limits import AdmitTurn
from agentplatform.api.schemas.runs import ChatInput, RunPublic, TaskInput
from agentplatform.api.sse import event_stream
from agentplatform.runtime.replay import run_events

router = APIRouter(tags=["runs"])

SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "Run events."}
}
Seq = Annotated[int, Query(ge=0, le=2**31 - 1)]


@router.post(
    "/api/agents/{agent_id}/runs", status_code=status.HTTP_201_CREATED, dependencies=[AdmitTurn]
)
async def start_task_run(
    agent_id: str, body: TaskInput, principal: CurrentPrincipal, services: ServicesDep
) -> RunPublic:
    """Runs the agent on a task in a conversation of its own; follow it at ``/events``."""
    turn = await services.runner.start_turn(principal.user_id, agent_id, body.input)
    return RunPublic.model_validate(turn.run)


@router.get("/api/runs/{run_id}")
async def read_run(run_id: str, principal: CurrentPrincipal, services: ServicesDep) -> RunPublic:
    return RunPublic.model_validate(await services.runs.get(principal.user_id, run_id))


@router.post("/api/runs/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel_run(run_id: str, principal: CurrentPrincipal, services: ServicesDep) -> RunPublic:
    """Asks the run to stop; it ends ``cancelled`` unless it ended first."""
    return RunPublic.model_validate(await services.runner.cancel(principal.user_id, run_id))


@router.get("/api/runs/{run_id}/events", response_class=StreamingResponse, responses=SSE_RESPONSE)
async def stream_run_events(
    run_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    after: Seq = 0,
    last_event_id: Annotated[str | None, Header(max_length=16)] = None,
) -> StreamingResponse:
    """Every event after ``after`` (or the ``Last-Event-ID`` header), then the live rest."""
    if last_event_id and last_event_id.isdigit():
        after = max(after, int(last_event_id))
    await services.runs.get(principal.user_id, run_id)  # 404 before the stream starts
    events = run_events(services.runs, services.bus, principal.user_id, run_id, after)
    return event_stream(events)


@router.post(
    "/api/agents/{agent_id}/chat",
    response_class=StreamingResponse,
    responses=SSE_RESPONSE,
    dependencies=[AdmitTurn],
)
async def chat(
    agent_id: str, body: ChatInput, principal: CurrentPrincipal, services: ServicesDep
) -> StreamingResponse:
    """One turn over SSE: an ``ack`` event, then the run's events."""
    turn = await services.runner.start_turn(
        principal.user_id,
        agent_id,
        body.content,
        conversation_id=body.conversation_id,
        client_msg_id=body.client_msg_id,
    )
    ack = {
        "type": "ack",
        "conversation_id": turn.conversation_id,
        "message_id": turn.user_message_id,
        "assistant_message_id": turn.assistant_message_id,
        "run_id": turn.run.id,
        "duplicate": turn.duplicate,
    }
    first = f"event: ack\ndata: {json.dumps(ack)}\n\n".encode()
    events = run_events(services.runs, services.bus, principal.user_id, turn.run.id)
    return event_stream(events, first=first)
