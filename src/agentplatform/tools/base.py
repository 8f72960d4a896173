"""The contract every tool implements, and the registry agents pick tools from.

A ``Tool`` has a ``name`` (``[a-z][a-z0-9_]*``, or ``server.tool`` for MCP tools), a
``description`` for the model, JSON-schema ``parameters`` (an object schema) and a
``timeout`` in seconds. ``call(arguments, context)`` returns a ``ToolResult``; a failure the
model should see is a ``ToolResult(is_error=True)`` or a raised ``ToolError`` — never a crash.
``unavailable_reason()`` is ``None`` when the tool can run on this machine.

The registry validates arguments against the schema, applies the timeout, and turns any
exception into an error result, so the agent loop only ever receives results.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jsonschema

log = logging.getLogger("agentplatform.tools")

MAX_RESULT_CHARS = 20_000


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who is calling and where: tools that keep files use ``conversation_id`` as workspace."""

    user_id: str
    conversation_id: str
    run_id: str


@dataclass(frozen=True, slots=True)
class ToolResult:
    content: str
    is_error: bool = False


class ToolError(Exception):
    """Raised by a tool to report a failure to the model (the message is shown to it)."""


class Tool(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> Mapping[str, Any]: ...

    @property
    def timeout(self) -> float: ...

    def unavailable_reason(self) -> str | None: ...

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult: ...


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """A tool as listed by ``GET /api/tools``."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    available: bool
    reason: str | None


class ToolRegistry:
    """Every tool this process offers; agents select from it by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is registered twice")
        jsonschema.Draft202012Validator.check_schema(dict(tool.parameters))
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def infos(self) -> list[ToolInfo]:
        return [
            ToolInfo(
                name=tool.name,
                description=tool.description,
                parameters=tool.parameters,
                available=(reason := tool.unavailable_reason()) is None,
                reason=reason,
            )
            for tool in (self._tools[name] for name in self.names())
        ]

    async def call(
        self,
        name: str,
        arguments: Mapping[str, Any],
        context: ToolContext,
        *,
        allowed: Iterable[str] | None = None,
    ) -> ToolResult:
        """Run a tool; every failure comes back as an error result the model can read."""
        tool = self._tools.get(name)
        if tool is None or (allowed is not None and name not in set(allowed)):
            return ToolResult(f"There is no tool named {name!r} available to this agent.", True)
        reason = tool.unavailable_reason()
        if reason is not None:
            return ToolResult(f"The tool {name!r} is unavailable: {reason}", True)
        try:
            jsonschema.validate(dict(arguments), dict(tool.parameters))
        except jsonschema.ValidationError as exc:
            return ToolResult(f"Invalid arguments for {name!r}: {exc.message}", True)
        try:
            async with asyncio.timeout(tool.timeout):
                result = await tool.call(arguments, context)
        except TimeoutError:
            return ToolResult(f"The tool {name!r} timed out after {tool.timeout:g} s.", True)
        except ToolError as exc:
            return ToolResult(str(exc), True)
        except Exception:
            log.exception("tool %s failed", name)
            return ToolResult(f"The tool {name!r} failed unexpectedly.", True)
        return _bounded(result)


def _bounded(result: ToolResult) -> ToolResult:
    if len(result.content) <= MAX_RESULT_CHARS:
        return result
    kept = result.content[:MAX_RESULT_CHARS]
    return ToolResult(
        kept + f"\n… [truncated {len(result.content) - MAX_RESULT_CHARS} chars]", result.is_error
    )
