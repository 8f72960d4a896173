"""The ``agentplatform`` command: ``serve`` and ``migrate``."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from agentplatform.config import Settings
from agentplatform.observability.logging import configure_logging, secret_values

cli = typer.Typer(add_completion=False, no_args_is_help=True, help="Run the agent platform.")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Serve the HTTP/WebSocket API (and the dashboard)."""
    import uvicorn

    from agentplatform.app import create_app

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format, secrets=secret_values(settings))
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level,
        log_config=None,  # keep the handler configured above: one format for every line
        access_log=False,  # the telemetry middleware writes one line per request instead
        proxy_headers=False,
        timeout_graceful_shutdown=30,
        ws_max_size=settings.ws_max_frame_bytes,
        # Deltas are tiny frames: compression saves little and doubles each socket's memory.
        ws_per_message_deflate=False,
    )


@cli.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from agentplatform.store.db import Database
    from agentplatform.store.migrate import current_revision, upgrade

    async def _run() -> str | None:
        db = Database(Settings().database_url)
        try:
            await upgrade(db)
            return await current_revision(db)
        finally:
            await db.dispose()

    revision = asyncio.run(_run())
    typer.echo(f"database at revision {revision}")


def main() -> None:
    cli()
