"""``current_time`` with a fixed clock: zones, offsets, daylight saving, bad names."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agentplatform.tools.base import ToolContext, ToolError, ToolRegistry
from agentplatform.tools.clock import CurrentTimeTool

CONTEXT = ToolContext(user_id="u", conversation_id="c", run_id="r")
WINTER = datetime(2024, 1, 15, 12, 30, 5, tzinfo=UTC)  # a Monday
SUMMER = datetime(2024, 7, 4, 23, 45, tzinfo=UTC)  # a Thursday


async def now_in(zone: str | None, at: datetime = WINTER) -> dict[str, object]:
    tool = CurrentTimeTool(clock=lambda: at)
    arguments = {} if zone is None else {"timezone": zone}
    result = await tool.call(arguments, CONTEXT)
    assert not result.is_error
    payload: dict[str, object] = json.loads(result.content)
    return payload


@pytest.mark.parametrize(
    ("zone", "at", "iso", "weekday", "offset", "dst"),
    [
        (None, WINTER, "2024-01-15T12:30:05+00:00", "Monday", "+00:00", False),
        ("UTC", WINTER, "2024-01-15T12:30:05+00:00", "Monday", "+00:00", False),
        ("Europe/Paris", WINTER, "2024-01-15T13:30:05+01:00", "Monday", "+01:00", False),
        ("Europe/Paris", SUMMER, "2024-07-05T01:45:00+02:00", "Friday", "+02:00", True),
        ("America/New_York", WINTER, "2024-01-15T07:30:05-05:00", "Monday", "-05:00", False),
        ("America/New_York", SUMMER, "2024-07-04T19:45:00-04:00", "Thursday", "-04:00", True),
        ("Asia/Kolkata", WINTER, "2024-01-15T18:00:05+05:30", "Monday", "+05:30", False),
        ("Asia/Kathmandu", WINTER, "2024-01-15T18:15:05+05:45", "Monday", "+05:45", False),
        ("Pacific/Kiritimati", WINTER, "2024-01-16T02:30:05+14:00", "Tuesday", "+14:00", False),
        ("Etc/GMT+12", WINTER, "2024-01-15T00:30:05-12:00", "Monday", "-12:00", False),
    ],
)
async def test_reports_the_time_in_a_zone(
    zone: str | None, at: datetime, iso: str, weekday: str, offset: str, dst: bool
) -> None:
    payload = await now_in(zone, at)
    assert payload["iso"] == iso
    assert payload["weekday"] == weekday
    assert payload["utc_offset"] == offset
    assert payload["dst"] is dst
    assert payload["timezone"] == (zone or "UTC")


async def test_names_the_abbreviation() -> None:
    assert (await now_in("Europe/Paris", SUMMER))["abbreviation"] == "CEST"
    assert (await now_in("America/New_York", WINTER))["abbreviation"] == "EST"


async def test_a_clock_in_another_zone_or_naive_is_converted() -> None:
    tokyo = WINTER.astimezone(timezone(timedelta(hours=9)))
    assert (await now_in("UTC", tokyo))["iso"] == "2024-01-15T12:30:05+00:00"
    naive = WINTER.replace(tzinfo=None)  # read as UTC, never as the server's local time
    assert (await now_in("UTC", naive))["iso"] == "2024-01-15T12:30:05+00:00"


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus_Mons", "", "../../etc/passwd", "/etc/localtime", "America", "CEST"]
)
async def test_unknown_zones_are_refused_with_an_example(zone: str) -> None:
    tool = CurrentTimeTool(clock=lambda: WINTER)
    with pytest.raises(ToolError) as caught:
        await tool.call({"timezone": zone or " "}, CONTEXT)
    assert "Unknown time zone" in str(caught.value)
    assert "Europe/Paris" in str(caught.value)


async def test_a_miscased_zone_gets_a_suggestion() -> None:
    with pytest.raises(ToolError, match="Did you mean 'America/New_York'"):
        await CurrentTimeTool(clock=lambda: WINTER).call({"timezone": "america/new_york"}, CONTEXT)


async def test_through_the_registry() -> None:
    registry = ToolRegistry([CurrentTimeTool(clock=lambda: WINTER)])
    result = await registry.call("current_time", {"timezone": "Europe/Paris"}, CONTEXT)
    assert json.loads(result.content)["iso"] == "2024-01-15T13:30:05+01:00"
    bad = await registry.call("current_time", {"timezone": 5}, CONTEXT)
    assert bad.is_error and "Invalid arguments" in bad.content
    unknown = await registry.call("current_time", {"timezone": "Nowhere/Land"}, CONTEXT)
    assert unknown.is_error and "Unknown time zone 'Nowhere/Land'" in unknown.content


async def test_the_default_clock_is_the_real_one() -> None:
    tool = CurrentTimeTool()
    assert tool.name == "current_time" and tool.unavailable_reason() is None
    before = datetime.now(UTC)
    payload = json.loads((await tool.call({}, CONTEXT)).content)
    reported = datetime.fromisoformat(payload["iso"])
    assert before - timedelta(seconds=1) <= reported <= datetime.now(UTC)
