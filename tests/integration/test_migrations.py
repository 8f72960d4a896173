"""Migrations: a fresh database reaches the models' schema exactly, and back down again."""

from __future__ import annotations

from collections.abc import Callable

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from agentplatform.store.db import Database
from agentplatform.store.migrate import current_revision, downgrade, upgrade
from agentplatform.store.tables import Base


async def test_upgrade_matches_models_and_downgrades(
    backend: str, database_urls: Callable[[str], str]
) -> None:
    db = Database(database_urls(backend))
    try:
        await upgrade(db)
        assert await current_revision(db) == "0002"

        def diff(connection: Connection) -> list[object]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))

        async with db.engine.connect() as conn:
            assert await conn.run_sync(diff) == []
        await upgrade(db)  # idempotent
        await downgrade(db, "base")

        def tables(connection: Connection) -> set[str]:
            return set(inspect(connection).get_table_names()) - {"alembic_version"}

        async with db.engine.connect() as conn:
            assert await conn.run_sync(tables) == set()
        await upgrade(db)
        assert await current_revision(db) == "0002"
    finally:
        await db.dispose()
