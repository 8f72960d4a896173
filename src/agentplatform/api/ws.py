"""The WebSocket workspace (``/ws`` and the original ``/workspace/{user_id}``).

The handshake is authenticated (bearer header, or the session cookie from an allowed
``Origin``) before anything is accepted. Frames follow DESIGN.md: ``chat`` → ``ack`` →
``delta``… → one ``done``/``error``; ``cancel``; ``resume``; ``ping``. A bad frame gets an
``error`` frame and the socket stays open. Runs are not tied to the socket: closing it stops
the forwarding, never the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from pydantic import ValidationError

from agentplatform.api.deps import Services, presented_token
from agentplatform.api.limits import admit_turn, refuse_socket, socket_slot
from agentplatform.api.schemas.runs import (
    CLIENT_FRAME,
    CancelFrame,
    ChatFrame,
    PingFrame,
    ResumeFrame,
)
from agentplatform.domain.identity import Principal
from agentplatform.domain.ids import new_id
from agentplatform.errors import AppError
from agentplatform.runtime.replay import run_events
from agentplatform.security.json_depth import RepeatedKey, loads_unique
from agentplatform.store.tables import utcnow

router = APIRouter()
log = logging.getLogger("agentplatform.ws")

MESSAGE_TOO_BIG = 1009


@router.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await _serve(websocket, claimed_user=None)


@router.websocket("/workspace/{user_id}")
async def workspace(websocket: WebSocket, user_id: str) -> None:
    await _serve(websocket, claimed_user=user_id)


def origin_allowed(websocket: WebSocket, allowed: list[str]) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser: browsers always send Origin on WebSocket handshakes
    origin = origin.rstrip("/")
    host = websocket.headers.get("host", "")
    same = {f"http://{host}", f"https://{host}"}
    return origin in same or origin in allowed


async def _authenticate(websocket: WebSocket, services: Services) -> Principal | None:
    try:
        token = presented_token(websocket)
    except AppError:
        return None
    if not token or len(token) > 256:
        return None
    by_cookie = "authorization" not in websocket.headers
    if by_cookie and not origin_allowed(websocket, services.settings.allowed_origins):
        return None
    return await services.identity.resolve(token)


async def _serve(websocket: WebSocket, claimed_user: str | None) -> None:
    services: Services = websocket.app.state.services
    try:
        principal = await _authenticate(websocket, services)
    except Exception:  # the database is unreachable: ask the client to come back later
        log.warning("websocket handshake could not check the session", exc_info=True)
        await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER)
        return
    if principal is None or (claimed_user is not None and claimed_user != principal.user_id):
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
        return
    websocket.state.user_id = principal.user_id  # the connection's log line records it, hashed
    await websocket.accept()
    async with socket_slot(services, principal) as admitted:
        if not admitted:  # over the user's connection cap: say why, then close 1013
            await refuse_socket(websocket, services)
            return
        await Workspace(websocket, principal, services).run()


class Workspace:
    """One open socket of one user."""

    def __init__(self, websocket: WebSocket, principal: Principal, services: Services) -> None:
        self.websocket = websocket
        self.principal = principal
        self.services = services
        self.connection_id = new_id()
        self._send_lock = asyncio.Lock()
        self._forwarders: dict[str, asyncio.Task[None]] = {}

    async def send(self, frame: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_text(json.dumps(frame, default=str))

    async def run(self) -> None:
        await self.send(
            {
                "type": "welcome",
                "user_id": self.principal.user_id,
                "connection_id": self.connection_id,
                "server_time": utcnow().isoformat(),
            }
        )
        limit = self.services.settings.ws_max_frame_bytes
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:  # a binary frame: this protocol speaks JSON text only
                    await self.error("invalid_frame", "Frames must be JSON text, not binary.")
                    continue
                if len(text.encode("utf-8", "surrogatepass")) > limit:
                    await self.websocket.close(code=MESSAGE_TOO_BIG)
                    return
                await self.handle(text)
        except WebSocketDisconnect:
            pass
        finally:
            for task in self._forwarders.values():
                task.cancel()
            await asyncio.gather(*self._forwarders.values(), return_exceptions=True)

    async def handle(self, text: str) -> None:
        try:  # parsed once: duplicate keys are refused, then the frame is validated
            data = loads_unique(text)
        except RepeatedKey:
            await self.error("invalid_frame", "A JSON object names the same key twice.")
            return
        except (ValueError, RecursionError):
            await self.error("invalid_frame", "The frame is not JSON.")
            return
        try:
            frame = CLIENT_FRAME.validate_python(data)
        except ValidationError as exc:
            details = [
                {"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()[:5]
            ]
            await self.error("invalid_frame", "The frame did not validate.", details=details)
            return
        try:
            if isinstance(frame, ChatFrame):
                await self.chat(frame)
            elif isinstance(frame, CancelFrame):
                await self.services.runner.cancel(self.principal.user_id, frame.run_id)
            elif isinstance(frame, ResumeFrame):
                await self.services.runs.get(self.principal.user_id, frame.run_id)
                self.forward(frame.run_id, frame.after_seq)
            elif isinstance(frame, PingFrame):
                await self.send({"type": "pong", "nonce": frame.nonce})
        except AppError as exc:
            await self.error(
                exc.code, exc.message, details={"frame": frame.type}, retry_after=exc.retry_after
            )
        except Exception:  # the socket outlives any one frame's failure
            log.exception("frame %s failed", frame.type)
            await self.error("internal", "That did not work; try again.")

    async def chat(self, frame: ChatFrame) -> None:
        await admit_turn(self.services, self.principal)  # before any run: no model call
        turn = await self.services.runner.start_turn(
            self.principal.user_id,
            frame.agent_id,
            frame.content,
            conversation_id=frame.conversation_id,
            client_msg_id=frame.client_msg_id,
        )
        await self.send(
            {
                "type": "ack",
                "conversation_id": turn.conversation_id,
                "message_id": turn.user_message_id,
                "assistant_message_id": turn.assistant_message_id,
                "run_id": turn.run.id,
                "client_msg_id": frame.client_msg_id,
                "duplicate": turn.duplicate,
            }
        )
        self.forward(turn.run.id, 0)

    def forward(self, run_id: str, after_seq: int) -> None:
        """Send the run's events after ``after_seq`` to this socket (replacing a forwarder)."""
        previous = self._forwarders.pop(run_id, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.create_task(self._forward(run_id, after_seq))
        self._forwarders[run_id] = task
        task.add_done_callback(
            lambda t: (
                self._forwarders.pop(run_id, None) if self._forwarders.get(run_id) is t else None
            )
        )

    async def _forward(self, run_id: str, after_seq: int) -> None:
        events = run_events(
            self.services.runs, self.services.bus, self.principal.user_id, run_id, after_seq
        )
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            async for event in events:
                await self.send(event.model_dump(mode="json"))

    async def error(
        self,
        code: str,
        message: str,
        *,
        run_id: str | None = None,
        details: Any = None,
        retry_after: int | None = None,
    ) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if run_id:
            frame["run_id"] = run_id
        if details is not None:
            frame["details"] = details
        if retry_after is not None:
            frame["retry_after"] = retry_after
        await self.send(frame)
