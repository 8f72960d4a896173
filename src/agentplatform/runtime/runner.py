"""The Runner: one run = history → model → events → storage, ending in exactly one state.

``start_turn`` commits the user's message and a queued run, then runs it in a background task
that is not tied to any socket: closing the tab does not stop a run; ``cancel`` does. Events
go to the bus with consecutive ``seq``; the reply so far is saved every ``heartbeat`` seconds;
the terminal state, the final text and the agent's counters are written in one transaction,
and only then is the terminal event published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from datetime import timedelta
from typing import Any

from agentplatform.domain.events import DeltaEvent, DoneEvent, ErrorEvent, RunEvent
from agentplatform.providers.base import (
    ChatModel,
    ChatRequest,
    ProviderConnectionError,
    ProviderError,
)
from agentplatform.providers.registry import ProviderRegistry, UnknownModel
from agentplatform.runtime.agent_loop import AgentLoop
from agentplatform.runtime.bus import EventBus
from agentplatform.runtime.cancel import CancelSignals
from agentplatform.runtime.context import build_request
from agentplatform.runtime.observer import RunObserver, RunReport
from agentplatform.runtime.progress import Progress
from agentplatform.store.repositories import Outcome, RunContext, RunRepository, Turn
from agentplatform.store.tables import Run, utcnow
from agentplatform.tools.base import ToolContext, ToolRegistry

log = logging.getLogger("agentplatform.runtime")


class _Cancelled(Exception):
    pass


class Runner:
    def __init__(
        self,
        runs: RunRepository,
        registry: ProviderRegistry,
        bus: EventBus,
        cancels: CancelSignals,
        tools: ToolRegistry | None = None,
        *,
        heartbeat: float = 2.0,
        lease: float = 30.0,
        observer: RunObserver | None = None,
    ) -> None:
        self._runs = runs
        self._registry = registry
        self._bus = bus
        self._cancels = cancels
        self._heartbeat = heartbeat
        self._lease = lease
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.tools = tools or ToolRegistry()
        self._loop = AgentLoop(self.tools, self._publish, self._beat, heartbeat)
        self.worker_id = secrets.token_hex(8)
        self._observer = observer
        # run id → (monotonic start, monotonic time of the first text delta or None)
        self._clock: dict[str, tuple[float, float | None]] = {}

    async def start_turn(
        self,
        user_id: str,
        agent_id: str,
        content: str,
        *,
        conversation_id: str | None = None,
        client_msg_id: str | None = None,
    ) -> Turn:
        turn = await self._runs.begin_turn(
            user_id,
            agent_id,
            content,
            conversation_id=conversation_id,
            client_msg_id=client_msg_id,
        )
        if not turn.duplicate:
            await self._bus.open(turn.run.id, user_id)
            self._spawn(turn.run)
        return turn

    async def cancel(self, user_id: str, run_id: str) -> Run:
        run = await self._runs.get(user_id, run_id)
        if run.status in ("queued", "in_progress"):
            await self._cancels.request(run_id)
        return run

    async def wait(self, run_id: str) -> None:
        """Until this process's task for the run is over (tests, shutdown)."""
        task = self._tasks.get(run_id)
        if task is not None:
            await asyncio.shield(task)

    async def recover(self, *, all_active: bool) -> int:
        """End runs a dead process left behind; ``all_active`` when this is the only process."""
        stale_before = utcnow() - timedelta(seconds=self._lease)
        count = await self._runs.interrupt_stale(stale_before, all_active=all_active)
        if count:
            log.warning("marked %d abandoned run(s) interrupted", count)
        return count

    async def aclose(self) -> None:
        """Stop every run of this process; each ends ``interrupted`` with its text saved."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, run: Run) -> None:
        task = asyncio.create_task(self._execute(run), name=f"run-{run.id}")
        self._tasks[run.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run.id, None))

    async def _execute(self, run: Run) -> None:
        progress = Progress(run=run)
        cancel = self._cancels.watch(run.id)
        outcome: Outcome | None = None
        self._clock[run.id] = (time.monotonic(), None)
        try:
            context = await self._runs.start(run.id, self.worker_id)
            if context is None:
                return
            outcome = await self._produce(context, progress, cancel)
        except asyncio.CancelledError:
            outcome = _ended(progress, "interrupted", "interrupted", "The server is shutting down.")
            raise
        except Exception:
            log.exception("run %s failed unexpectedly", run.id)
            outcome = _ended(progress, "failed", "internal", "The run failed on our side.")
        finally:
            self._cancels.forget(run.id)
            clock = self._clock.pop(run.id, None)
            if outcome is not None:
                await asyncio.shield(self._finish(progress, outcome, clock))

    async def _produce(
        self, context: RunContext, progress: Progress, cancel: asyncio.Event
    ) -> Outcome:
        try:
            model = self._registry.resolve(progress.run.model)
        except UnknownModel as exc:
            return _ended(progress, "failed", "model_unavailable", str(exc))
        request = build_request(context.agent, context.history, model.context_tokens)
        try:
            await self._stream(model, request, context, progress, cancel)
        except _Cancelled:
            return _ended(progress, "cancelled")
        except ProviderError as exc:
            status = (
                "interrupted"
                if progress.parts and isinstance(exc, ProviderConnectionError)
                else "failed"
            )
            return _ended(progress, status, f"provider_{exc.code}", exc.message)
        return _ended(progress, "completed")

    async def _stream(
        self,
        model: ChatModel,
        request: ChatRequest,
        context: RunContext,
        progress: Progress,
        cancel: asyncio.Event,
    ) -> None:
        """Run the agent loop in its own task, so a cancel can stop it at any await."""
        run = progress.run
        consumer = asyncio.create_task(
            self._loop.run(
                model,
                request,
                progress,
                allowed=list(context.agent.tools or []),
                max_steps=context.agent.max_steps,
                context=ToolContext(run.user_id, run.conversation_id, run.id),
            )
        )
        waiter = asyncio.create_task(cancel.wait())
        try:
            await asyncio.wait({consumer, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if not consumer.done():
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer
        if consumer.cancelled():
            raise _Cancelled()
        consumer.result()

    async def _beat(self, progress: Progress) -> None:
        await self._runs.heartbeat(
            progress.run.id,
            progress.text,
            progress.parts if progress.used_tools else None,
            progress.seq,
        )

    async def _publish(self, progress: Progress, kind: type[RunEvent], **fields: Any) -> None:
        progress.seq += 1
        if kind is DeltaEvent:
            started, first = self._clock.get(progress.run.id, (0.0, None))
            if first is None:
                self._clock[progress.run.id] = (started, time.monotonic())
        event = kind(run_id=progress.run.id, seq=progress.seq, **fields)
        await self._bus.publish(event)

    async def _finish(
        self,
        progress: Progress,
        outcome: Outcome,
        clock: tuple[float, float | None] | None = None,
    ) -> None:
        run = progress.run
        ended = await self._runs.finish(run.id, outcome)
        if ended is None:
            log.info("run %s had already ended", run.id)
            return
        self._report(progress, outcome, clock)
        common = {
            "conversation_id": run.conversation_id,
            "message_id": run.assistant_message_id,
        }
        if outcome.status in ("completed", "cancelled"):
            await self._publish(
                progress,
                DoneEvent,
                status=outcome.status,
                input_tokens=outcome.input_tokens,
                output_tokens=outcome.output_tokens,
                **common,
            )
        else:
            await self._publish(
                progress,
                ErrorEvent,
                status=outcome.status,
                code=outcome.error_code or "failed",
                message=outcome.error_message or "The run failed.",
                **common,
            )

    def _report(
        self, progress: Progress, outcome: Outcome, clock: tuple[float, float | None] | None
    ) -> None:
        if self._observer is None:
            return
        now = time.monotonic()
        started, first = clock or (now, None)
        model = progress.run.model
        report = RunReport(
            run_id=progress.run.id,
            status=outcome.status,
            provider=model.partition(":")[0] or "unknown",
            model=model,
            duration_s=now - started,
            ttft_s=None if first is None else first - started,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            error_code=outcome.error_code,
        )
        try:
            self._observer.run_finished(report)
        except Exception:  # telemetry must never change how a run ends
            log.exception("run observer failed")


def _ended(
    progress: Progress, status: str, code: str | None = None, message: str | None = None
) -> Outcome:
    return Outcome(
        status=status,
        text=progress.text,
        parts=progress.parts if progress.used_tools else None,
        last_seq=progress.seq + 1,
        error_code=code,
        error_message=message,
        input_tokens=progress.input_tokens,
        output_tokens=progress.output_tokens,
    )
