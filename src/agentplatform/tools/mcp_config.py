"""The operator's list of MCP servers: the file format, its validation and loading.

Only the operator declares MCP servers, in a file named by the ``AGENTPLATFORM_MCP_CONFIG``
setting (``mcp_config``). There is no API to add, change or remove a server: a command or a
URL chosen by a user would hand the machine to anyone with a guest session. The file is read
once at start-up; a file that does not validate stops start-up with a message naming the
file and the offending key.

The file is JSON (``*.json``) or TOML (``*.toml``) with one top-level key, ``servers``, a
table of servers by name. A name matches ``[a-z][a-z0-9_-]{0,31}``; a server's tools appear
in the tool registry as ``<server>.<tool>``. Each server has exactly one of ``command``
(launched as a subprocess, spoken to over stdio) or ``url`` (streamable HTTP)::

    {
      "servers": {
        "files": {
          "command": "npx",
          "args": ["-y", "some-files-mcp-server", "/srv/shared"],
          "env": {"LOG_LEVEL": "warn"},
          "cwd": "/srv",
          "timeout": 20,
          "tools": ["read_file", "list_directory"]
        },
        "search": {
          "url": "https://search.internal.example/mcp",
          "headers": {"Authorization": "Bearer <token>"}
        }
      }
    }

Keys, all optional except ``command`` or ``url``:

- ``args`` (stdio): arguments of ``command``.
- ``env`` (stdio): environment variables for the server. The server inherits only ``HOME``,
  ``LOGNAME``, ``PATH``, ``SHELL``, ``TERM`` and ``USER`` from the platform (never its
  database URL or API keys), plus these.
- ``cwd`` (stdio): working directory; a relative path is relative to the config file.
- ``headers`` (HTTP): sent with every request, e.g. an ``Authorization`` header.
- ``timeout``: seconds one tool call may take (default 30).
- ``startup_timeout``: seconds to connect and list tools (default 30).
- ``tools``: an allow-list of the server's tool names; tools not listed are not offered.
  Listed tools stay registered (reported unavailable) while the server cannot start, so
  agents that use them keep validating.

Values of ``env`` and ``headers`` are kept as secrets (never logged or shown). Any other
key is an error. A server's tool descriptions are shown to the model as they are: declare
only servers you trust.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

SERVER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# What model vendors accept in a tool name; an MCP tool named otherwise is not offered.
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class McpConfigError(ValueError):
    """The MCP config file is missing, unreadable or invalid (raised at start-up)."""


class McpServerConfig(BaseModel):
    """One MCP server: a stdio ``command`` or a streamable-HTTP ``url``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str | None = Field(default=None, min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, SecretStr] = Field(default_factory=dict)
    cwd: Path | None = None
    url: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout: float = Field(default=30.0, gt=0, le=3600)
    startup_timeout: float = Field(default=30.0, gt=0, le=600)
    tools: list[str] | None = None

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command is not None else "http"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("url must be an http:// or https:// URL with a host")
        return value

    @field_validator("cwd")
    @classmethod
    def _relative_to_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base = (info.context or {}).get("base_dir")
        if value is None or value.is_absolute() or base is None:
            return value
        return Path(base) / value

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for name in value:
            if not TOOL_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a usable tool name ({TOOL_NAME.pattern})")
        if len(set(value)) != len(value):
            raise ValueError("tools lists a name twice")
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of command (stdio) or url (streamable HTTP)")
        if self.url is not None:
            stdio_only = [k for k in ("args", "env", "cwd") if k in self.model_fields_set]
            if stdio_only:
                raise ValueError(f"{', '.join(stdio_only)} only apply to a command server")
        elif "headers" in self.model_fields_set:
            raise ValueError("headers only apply to a url server")
        return self


class McpConfig(BaseModel):
    """Every MCP server the operator declared, by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    servers: dict[str, McpServerConfig] = Field(default_factory=dict)

    @field_validator("servers")
    @classmethod
    def _server_names(cls, value: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
        for name in value:
            if not SERVER_NAME.fullmatch(name):
                raise ValueError(
                    f"server name {name!r} must match {SERVER_NAME.pattern} "
                    "(lower-case letter first; letters, digits, '_' and '-'; at most 32)"
                )
        return value


def parse_mcp_config(
    data: Any, *, base_dir: Path | None = None, source: str = "MCP config"
) -> McpConfig:
    """Validate decoded config data; a relative ``cwd`` is taken relative to ``base_dir``."""
    try:
        return McpConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise McpConfigError(f"{source} is invalid:\n{_describe(exc)}") from None


def load_mcp_config(path: Path) -> McpConfig:
    """Read and validate the operator's MCP config file (``.json`` or ``.toml``)."""
    suffix = path.suffix.lower()
    if suffix not in {".json", ".toml"}:
        raise McpConfigError(f"MCP config {path}: the file name must end in .json or .toml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise McpConfigError(f"MCP config {path} cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = suffix[1:].upper()
        raise McpConfigError(f"MCP config {path} is not valid {kind}: {exc}") from None
    return parse_mcp_config(data, base_dir=path.parent.resolve(), source=f"MCP config {path}")


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)
