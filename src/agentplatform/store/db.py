"""The database handle: one async engine per app, short transactions, SQLite tuned for writers.

SQLite runs in WAL mode with a busy timeout and foreign keys on. Inside one process every
writing transaction goes through a single pooled connection and starts with ``BEGIN
IMMEDIATE``, so concurrent writers queue on the pool instead of failing with "database is
locked"; other processes (the CLI, a second server) wait on the busy timeout. Reads
(``Database.read``) use a few separate ``query_only`` connections: in WAL mode they run
alongside the writer and see every committed write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 10_000


def _ensure_sqlite_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


SQLITE_READERS = 4


def _tune_sqlite(engine: AsyncEngine, *, writer: bool) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if not writer:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def create_engine(
    url: str, *, pool_size: int = 10, echo: bool = False, writer: bool = True
) -> AsyncEngine:
    """An engine for SQLite (aiosqlite) or PostgreSQL (asyncpg) with the right knobs for each."""
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        size = 1 if writer else SQLITE_READERS
        engine = create_async_engine(
            url, echo=echo, pool_size=size, max_overflow=0, pool_timeout=60
        )
        _tune_sqlite(engine, writer=writer)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"timeout": 5, "command_timeout": 30},
    )


class Database:
    """Owns the engine; hands out short transactions to repositories."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size, echo=echo)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_engine = (
            create_engine(url, echo=echo, writer=False) if self.is_sqlite else self.engine
        )
        self._readers = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction; on SQLite it does not wait for the writer."""
        async with self._readers() as session, session.begin():
            yield session

    async def ping(self, within: float = 2.0) -> None:
        """One round trip; raises on failure or when it takes longer than ``within`` seconds."""
        async with asyncio.timeout(within), self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
