"""The agent loop: model → tool calls → results back to the model, at most ``max_steps`` times.

Independent tool calls of one step run concurrently, each under its own timeout (the tool
registry's). A tool failure, a timeout or a tool the agent does not have is a result the model
reads, never a crash. The last step offers no tools, so the model must answer in words.
Every step is published (``delta``, ``tool_call``, ``tool_result``) and kept as message parts.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from agentplatform.domain.events import DeltaEvent, ToolCallEvent, ToolResultEvent
from agentplatform.providers.base import (
    ChatMessage,
    ChatModel,
    ChatRequest,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
)
from agentplatform.runtime.progress import Progress
from agentplatform.tools.base import ToolContext, ToolRegistry, ToolResult

Publish = Callable[..., Awaitable[None]]
Beat = Callable[[Progress], Awaitable[None]]


def wire_name(name: str) -> str:
    """A tool name vendors accept (``[A-Za-z0-9_-]{1,64}``): ``files.read`` → ``files__read``."""
    wire = re.sub(r"[^A-Za-z0-9_-]", "_", name.replace(".", "__"))
    if len(wire) > 64:
        wire = wire[:55] + "_" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return wire


def tool_specs(registry: ToolRegistry, names: list[str]) -> tuple[ToolSpec, ...]:
    specs = []
    for name in names:
        tool = registry.get(name)
        if tool is not None:
            specs.append(ToolSpec(wire_name(tool.name), tool.description, tool.parameters))
    return tuple(specs)


def _on_the_wire(message: ChatMessage) -> ChatMessage:
    if not message.tool_calls:
        return message
    calls = tuple(ToolCall(c.id, wire_name(c.name), c.arguments) for c in message.tool_calls)
    return replace(message, tool_calls=calls)


class AgentLoop:
    def __init__(self, tools: ToolRegistry, publish: Publish, beat: Beat, heartbeat: float) -> None:
        self._tools = tools
        self._publish = publish
        self._beat = beat
        self._heartbeat = heartbeat

    async def run(
        self,
        model: ChatModel,
        request: ChatRequest,
        progress: Progress,
        *,
        allowed: list[str],
        max_steps: int,
        context: ToolContext,
    ) -> None:
        messages = [_on_the_wire(m) for m in request.messages]
        specs = tool_specs(self._tools, allowed)
        real_names = {wire_name(name): name for name in allowed}
        for step in range(1, max(max_steps, 1) + 1):
            offer = () if step == max_steps else specs
            text, calls = await self._step(
                model, replace(request, messages=tuple(messages), tools=offer), progress
            )
            if not calls or not offer:
                return
            calls = [replace(c, name=real_names.get(c.name, c.name)) for c in calls]
            results = await self._call_tools(calls, progress, allowed, context)
            messages.append(
                ChatMessage(
                    "assistant",
                    text,
                    tool_calls=tuple(ToolCall(c.id, wire_name(c.name), c.arguments) for c in calls),
                )
            )
            messages += [
                ChatMessage("tool", r.content, tool_call_id=c.id, is_error=r.is_error)
                for c, r in zip(calls, results, strict=True)
            ]

    async def _step(
        self, model: ChatModel, request: ChatRequest, progress: Progress
    ) -> tuple[str, list[ToolCallRequest]]:
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self._heartbeat
        text: list[str] = []
        calls: list[ToolCallRequest] = []
        events = model.stream(request)
        try:
            async for item in events:
                if isinstance(item, TextDelta) and item.text:
                    text.append(item.text)
                    progress.add_text(item.text)
                    await self._publish(progress, DeltaEvent, text=item.text)
                elif isinstance(item, ToolCallRequest):
                    calls.append(item)
                elif isinstance(item, Usage):
                    progress.add_usage(item.input_tokens, item.output_tokens)
                if loop.time() >= next_beat:
                    next_beat = loop.time() + self._heartbeat
                    await self._beat(progress)
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:  # close the provider's HTTP stream now, not at GC
                await aclose()
        return "".join(text), calls

    async def _call_tools(
        self,
        calls: list[ToolCallRequest],
        progress: Progress,
        allowed: list[str],
        context: ToolContext,
    ) -> list[ToolResult]:
        for call in calls:
            arguments: dict[str, Any] = dict(call.arguments)
            progress.parts.append(
                {"type": "tool_call", "call_id": call.id, "name": call.name, "arguments": arguments}
            )
            await self._publish(
                progress, ToolCallEvent, call_id=call.id, name=call.name, arguments=arguments
            )
        results = await asyncio.gather(
            *(self._tools.call(c.name, c.arguments, context, allowed=allowed) for c in calls)
        )
        for call, result in zip(calls, results, strict=True):
            progress.parts.append(
                {
                    "type": "tool_result",
                    "call_id": call.id,
                    "name": call.name,
                    "content": result.content,
                    "is_error": result.is_error,
                }
            )
            await self._publish(
                progress,
                ToolResultEvent,
                call_id=call.id,
                name=call.name,
                content=result.content,
                is_error=result.is_error,
            )
        await self._beat(progress)
        return list(results)
