"""The in-process event bus: ordered replay from any seq, then live events, then the end."""

from __future__ import annotations

import asyncio

import pytest

from agentplatform.domain.events import DeltaEvent, DoneEvent, RunEvent
from agentplatform.runtime.bus import MemoryBus


def delta(seq: int, run_id: str = "r") -> DeltaEvent:
    return DeltaEvent(run_id=run_id, seq=seq, text=f"t{seq}")


def done(seq: int, run_id: str = "r") -> DoneEvent:
    return DoneEvent(
        run_id=run_id, seq=seq, status="completed", conversation_id="c", message_id="m"
    )


async def collect(bus: MemoryBus, run_id: str, after: int) -> list[RunEvent]:
    return [event async for event in bus.subscribe(run_id, after)]


async def test_replay_then_live_then_end() -> None:
    bus = MemoryBus()
    await bus.open("r", "u")
    for seq in (1, 2, 3):
        await bus.publish(delta(seq))
    reader = asyncio.create_task(collect(bus, "r", 1))
    await asyncio.sleep(0)  # let the reader drain the stored events and start waiting
    await bus.publish(delta(4))
    await bus.publish(done(5))
    events = await reader
    assert [e.seq for e in events] == [2, 3, 4, 5]


async def test_many_readers_see_the_same_sequence() -> None:
    bus = MemoryBus()
    await bus.open("r", "u")
    readers = [asyncio.create_task(collect(bus, "r", 0)) for _ in range(20)]
    for seq in range(1, 50):
        await bus.publish(delta(seq))
    await bus.publish(done(50))
    results = await asyncio.gather(*readers)
    assert all([e.seq for e in r] == list(range(1, 51)) for r in results)


async def test_unknown_run_yields_nothing_and_gaps_are_refused() -> None:
    bus = MemoryBus()
    assert await collect(bus, "nobody", 0) == []
    assert not await bus.known("nobody")
    await bus.publish(delta(1))
    with pytest.raises(ValueError):
        await bus.publish(delta(3))
    await bus.publish(done(2))
    with pytest.raises(RuntimeError):
        await bus.publish(delta(3))


async def test_finished_runs_are_evicted_after_retention() -> None:
    now = [0.0]
    bus = MemoryBus(retention=10, clock=lambda: now[0])
    await bus.publish(done(1, run_id="old"))
    now[0] = 11
    await bus.open("new", "u")
    assert not await bus.known("old") and await bus.known("new")


async def test_the_bus_knows_whose_run_it_is() -> None:
    bus = MemoryBus()
    await bus.open("r", "alice")
    assert await bus.owner("r") == "alice"
    assert await bus.owner("unknown") is None
