"""The ``current_time`` tool: the current date and time in an IANA time zone.

The clock is a constructor argument (a ``Callable[[], datetime]`` returning an aware
datetime), so tests pass a fixed one. Zones come from the system tz database through
``zoneinfo``; ``UTC`` works even where that database is missing.
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from agentplatform.tools.base import ToolContext, ToolError, ToolResult

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def find_zone(name: str) -> tzinfo:
    """The zone called ``name``, or a ``ToolError`` suggesting a valid name."""
    if name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    suggestion = next(
        (zone for zone in zoneinfo.available_timezones() if zone.lower() == name.lower()), None
    )
    hint = f"Did you mean {suggestion!r}? " if suggestion else ""
    raise ToolError(
        f"Unknown time zone {name!r}. {hint}Use an IANA name such as 'Europe/Paris', "
        "'America/New_York' or 'UTC'."
    )


def _offset(moment: datetime) -> str:
    offset = moment.utcoffset()
    seconds = int(offset.total_seconds()) if offset is not None else 0
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


class CurrentTimeTool:
    """Tells the model the current date and time in a time zone."""

    name = "current_time"
    description = (
        "Get the current date and time (ISO 8601), the weekday and the UTC offset in an IANA "
        "time zone such as 'Europe/Paris' (default 'UTC')."
    )
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "timezone": {
                "type": "string",
                "description": "IANA time zone name, e.g. 'America/New_York'. Default: 'UTC'.",
                "maxLength": 64,
            }
        },
        "additionalProperties": False,
    }

    def __init__(self, *, clock: Clock = system_clock, timeout: float = 5.0) -> None:
        self._clock = clock
        self.timeout = timeout

    def unavailable_reason(self) -> str | None:
        return None

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        name = arguments.get("timezone") or "UTC"
        if not isinstance(name, str):
            raise ToolError("The argument 'timezone' must be a string.")
        zone = find_zone(name.strip())
        now = self._clock()
        if now.tzinfo is None:  # a naive clock is read as UTC rather than local time
            now = now.replace(tzinfo=UTC)
        local = now.astimezone(zone)
        payload = {
            "timezone": "UTC" if zone is UTC else str(zone),
            "iso": local.isoformat(timespec="seconds"),
            "weekday": local.strftime("%A"),
            "utc_offset": _offset(local),
            "abbreviation": local.tzname(),
            "dst": bool(local.dst()),
        }
        return ToolResult(json.dumps(payload))
