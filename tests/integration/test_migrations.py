"""Migrations: a fresh database reaches the models' schema exactly, and back down again."""

from __future__ import annotations

from collections.abc import Callable

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from agentplatform.store.db import Database
from agentplatform.store.migrate import alembic_config, current_revision, downgrade, upgrade
from agentplatform.store.tables import Base

HEAD = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://")).get_current_head()


def test_one_linear_history() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
    assert len(script.get_heads()) == 1
    assert [r.revision for r in script.walk_revisions()][-1] == "0001"


async def test_upgrade_matches_models_and_downgrades(
    backend: str, database_urls: Callable[[str], str]
) -> None:
    db = Database(database_urls(backend))
    try:
        await upgrade(db)
        assert await current_revision(db) == HEAD

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
        assert await current_revision(db) == HEAD
    finally:
        await db.dispose()
