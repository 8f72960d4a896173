"""SQLite under concurrent writers: no "database is locked", no lost or doubled sequence numbers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable

import httpx
from sqlalchemy import text

from agentplatform.app import create_app
from agentplatform.config import Settings
from agentplatform.domain.ids import new_id
from agentplatform.store.db import Database
from agentplatform.store.migrate import upgrade
from agentplatform.store.repositories import (
    AgentRepository,
    ConversationRepository,
    IdentityRepository,
    MessageRepository,
)
from tests.support.chat import AGENT_FIELDS

WRITER = """
import asyncio, sys
from agentplatform.store.db import Database
from agentplatform.store.repositories import MessageRepository

async def main(url, user_id, conversation_id, count):
    db = Database(url)
    repo = MessageRepository(db)
    async def one(i):
        await repo.append(user_id, conversation_id, role="user", content=f"w{i}")
    await asyncio.gather(*(one(i) for i in range(count)))
    await db.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


async def test_pragmas_are_set(database_urls: Callable[[str], str]) -> None:
    db = Database(database_urls("sqlite"))
    try:
        async with db.engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
            busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
        assert (mode, keys) == ("wal", 1)
        assert busy is not None and busy >= 5000
    finally:
        await db.dispose()


async def test_concurrent_requests_in_one_process(database_urls: Callable[[str], str]) -> None:
    url = database_urls("sqlite")
    db = Database(url)
    await upgrade(db)
    await db.dispose()
    app = create_app(Settings(database_url=url, rate_limits=False))  # a burst of 100 on purpose
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            token = (await c.post("/api/auth/guest")).json()["token"]
            c.cookies.clear()
            auth = {"Authorization": f"Bearer {token}"}

            async def make(i: int) -> int:
                r = await c.post("/api/agents", json={"name": f"a{i}"}, headers=auth)
                return r.status_code

            statuses = await asyncio.gather(*(make(i) for i in range(100)))
            assert statuses == [201] * 100
            listed = await c.get("/api/agents", params={"limit": 200}, headers=auth)
            assert len(listed.json()["items"]) == 100


async def test_writers_in_several_processes(database_urls: Callable[[str], str]) -> None:
    url = database_urls("sqlite")
    db = Database(url)
    try:
        await upgrade(db)
        _, principal = await IdentityRepository(db).create_guest(Settings().session_ttl)
        agent = await AgentRepository(db).create(
            principal.user_id,
            AGENT_FIELDS,
        )
        conversation = await ConversationRepository(db).create(principal.user_id, agent.id)
        args = [url, principal.user_id, conversation.id, "150"]
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", WRITER, *args, stderr=subprocess.PIPE
            )
            for _ in range(3)
        ]
        # Meanwhile this process writes too.
        repo = MessageRepository(db)
        for i in range(50):
            await repo.append(principal.user_id, conversation.id, role="assistant", content=str(i))
        for proc in procs:
            _, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()[-2000:]
        page = await repo.list(principal.user_id, conversation.id, after=0, limit=200)
        seqs = [m.seq for m in page.items]
        while page.next_cursor:
            page = await repo.list(
                principal.user_id, conversation.id, after=int(page.next_cursor), limit=200
            )
            seqs += [m.seq for m in page.items]
        assert seqs == list(range(1, 501))
        fresh = await ConversationRepository(db).get(principal.user_id, conversation.id)
        assert fresh.message_count == 500
        assert new_id()  # ids still flow after the storm
    finally:
        await db.dispose()


async def test_readers_are_read_only_and_see_committed_writes(
    database_urls: Callable[[str], str],
) -> None:
    db = Database(database_urls("sqlite"))
    try:
        await upgrade(db)
        async with db.read() as tx:
            assert (await tx.execute(text("PRAGMA query_only"))).scalar() == 1
        _, principal = await IdentityRepository(db).create_guest(Settings().session_ttl)
        assert await IdentityRepository(db).resolve("no-such-token") is None
        async with db.read() as tx:
            users = (await tx.execute(text("SELECT count(*) FROM users"))).scalar()
        assert users == 1 and principal.user_id
    finally:
        await db.dispose()
