"""The `eventms` command: serve, migrate, seed."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import typer

from eventms.config import ConfigError, Settings, get_settings

cli = typer.Typer(help="eventms: event registration backend.", no_args_is_help=True)
log = logging.getLogger("eventms")


def _settings() -> Settings:
    try:
        return get_settings()
    except ConfigError as error:
        typer.secho(f"eventms: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


@contextmanager
def embedded_services(settings: Settings) -> Iterator[Settings]:
    """Start an embedded engine for each part that is not configured, for as long as
    the block runs, and yield settings that point at them.

    The embedded locations are exported as environment variables (DATABASE_URL, …)
    so that uvicorn's worker processes, which read their own settings, reach them too.
    """
    with ExitStack() as stack:
        if not settings.database_configured:
            from eventms.embedded import EmbeddedPostgres

            pg = EmbeddedPostgres(settings.data_dir.resolve() / "pg")
            os.environ["DATABASE_URL"] = pg.start()
            stack.callback(pg.stop)
        get_settings.cache_clear()
        yield get_settings()


def _migrate(settings: Settings) -> None:
    from eventms.migrations import upgrade

    upgrade(settings.sqlalchemy_url().render_as_string(hide_password=False))


@cli.command()
def migrate() -> None:
    """Apply the database migrations (Alembic) to the configured database."""
    settings = _settings()
    with embedded_services(settings) as ready:
        _migrate(ready)
    typer.echo("migrations applied")


@cli.command()
def serve(
    host: str = typer.Option(None, help="interface to bind (default APP_HOST, 127.0.0.1)"),
    port: int = typer.Option(None, help="port (default APP_PORT, 3000)"),
    workers: int = typer.Option(1, min=1, help="uvicorn worker processes"),
) -> None:
    """Serve the API; with no database configured, on an embedded PostgreSQL."""
    import uvicorn

    settings = _settings()
    host = host or settings.app_host
    port = port or settings.app_port
    with embedded_services(settings) as ready:
        _migrate(ready)
        url = ready.sqlalchemy_url()
        typer.echo(f"eventms {'(embedded) ' if not settings.database_configured else ''}ready")
        typer.echo(f"  API         http://{host}:{port}/api/v1")
        typer.echo(f"  Swagger UI  http://{host}:{port}/api-docs")
        where = (
            f"embedded, data in {(settings.data_dir / 'pg').resolve()}"
            if not settings.database_configured
            else url.render_as_string(hide_password=True)
        )
        typer.echo(f"  PostgreSQL  {where}")
        redis = ready.redis_location()
        fan_out = "through Redis" if redis else "in this process only"
        typer.echo(f"  Socket.IO   ws://{host}:{port}/socket.io/ (broadcasts {fan_out})")
        if workers > 1 and not redis:
            typer.secho(
                "  warning: without Redis, a Socket.IO client hears only the broadcasts of"
                " the worker it is connected to; set REDIS_URL",
                fg=typer.colors.YELLOW,
            )
        uvicorn.run(
            "eventms.app:create_asgi_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            proxy_headers=False,
            # A Socket.IO long-poll (polling transport) holds its request for up to
            # ping_interval + ping_timeout (45 s); do not let it hold a shutdown that long.
            timeout_graceful_shutdown=5,
        )


@cli.command()
def seed(
    events: int = typer.Option(200, min=0, help="how many events to create"),
    attendees: int = typer.Option(10_000, min=0, help="how many attendees to create"),
) -> None:
    """Fill the database with demo data (events and attendees)."""
    from eventms.seed import seed_database

    settings = _settings()
    with embedded_services(settings) as ready:
        _migrate(ready)
        made = asyncio.run(seed_database(ready, events=events, attendees=attendees))
    typer.echo(f"seeded {made[0]} events and {made[1]} attendees")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # The embedded server and the migration runner narrate every step at INFO.
    for chatty in ("pgserver", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        cli()
    except ConfigError as error:
        typer.secho(f"eventms: {error}", fg=typer.colors.RED, err=True)
        sys.exit(2)
