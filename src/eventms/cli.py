"""The `eventms` command: serve, worker, migrate, seed, mail."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, TypeVar

import typer

from eventms.config import ConfigError, Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

cli = typer.Typer(help="eventms: event registration backend.", no_args_is_help=True)
log = logging.getLogger("eventms")


# --- production guard rails (issue 6) ---
LONG_RUNNING = {"serve", "worker"}


@cli.callback()
def _refuse_unsafe_production(ctx: typer.Context) -> None:
    """With APP_ENV=production, no command falls back to an embedded engine, and the
    long-running ones not to a placeholder sender: they name what is missing and stop."""
    # Reading the help needs no configuration. (click has already handed the
    # subcommand's arguments over by now, hence argv.)
    if "--help" in sys.argv[1:]:
        return
    settings = _settings()
    if settings.app_env != "production":
        return
    problems = settings.production_problems(
        database_only=ctx.invoked_subcommand not in LONG_RUNNING
    )
    if problems:
        typer.secho(
            "eventms: APP_ENV=production needs every part configured; missing: "
            + "; ".join(problems),
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)


class Terminated(Exception):
    """SIGTERM arrived: leave through the cleanups (embedded engines) and exit 0."""


def _exit_cleanly_on_sigterm() -> None:
    # uvicorn restores the previous SIGTERM handler after its graceful shutdown and
    # raises the signal again; with the default handler the process would die (-15)
    # without running the cleanups. This one turns it into an ordinary exit.
    def on_sigterm(signum: int, frame: object) -> None:
        raise Terminated

    signal.signal(signal.SIGTERM, on_sigterm)


def _share_metrics_between_workers(settings: Settings) -> None:
    """Point every process at one prometheus multiprocess directory, before any of
    them imports prometheus_client, emptied of the files of an earlier run (they
    would add to this run's counters)."""
    directory = settings.prometheus_multiproc_dir or settings.data_dir.resolve() / "metrics"
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    get_settings.cache_clear()


# --- end production guard rails ---


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
        if not settings.redis_configured:
            from eventms.embedded import EmbeddedRedis

            redis = EmbeddedRedis(settings.data_dir.resolve() / "redis")
            os.environ["REDIS_URL"] = redis.start()
            stack.callback(redis.stop)
        if not settings.smtp_configured:
            from eventms.embedded import EmbeddedSmtp

            sink = EmbeddedSmtp(settings.data_dir.resolve() / "mail")
            host, port = sink.start()
            stack.callback(sink.stop)
            os.environ.update(SMTP_HOST=host, SMTP_PORT=str(port), SMTP_SECURITY="none")
            os.environ.pop("SMTP_USER", None)
            os.environ.pop("SMTP_PASSWORD", None)
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
    workers: int = typer.Option(
        None, min=1, help="uvicorn worker processes (default WEB_CONCURRENCY, 1)"
    ),
) -> None:
    """Serve the API; with no database configured, on an embedded PostgreSQL."""
    import uvicorn

    from eventms.http.protocol import HTTP_PROTOCOL
    from eventms.observability.logging import logging_config

    settings = _settings()
    host = host or settings.app_host
    port = port or settings.app_port
    workers = workers or settings.web_concurrency or _cores()
    _exit_cleanly_on_sigterm()
    _share_metrics_between_workers(settings)
    with embedded_services(settings) as ready:
        _migrate(ready)
        url = ready.sqlalchemy_url()
        typer.echo(f"eventms {'(embedded) ' if not settings.database_configured else ''}ready")
        typer.echo(f"  API         http://{host}:{port}/api/v1 ({_workers(workers)})")
        typer.echo(f"  Swagger UI  http://{host}:{port}/api-docs")
        where = (
            f"embedded, data in {(settings.data_dir / 'pg').resolve()}"
            if not settings.database_configured
            else url.render_as_string(hide_password=True)
        )
        typer.echo(f"  PostgreSQL  {where}")
        redis_where = (
            f"embedded, files in {(settings.data_dir / 'redis').resolve()}"
            if not settings.redis_configured
            else ready.redis_location()
        )
        typer.echo(f"  Redis       {redis_where} (cache TTL {ready.ttl} s)")
        redis = ready.redis_location()
        fan_out = "through Redis" if redis else "in this process only"
        typer.echo(f"  Socket.IO   ws://{host}:{port}/socket.io/ (broadcasts {fan_out})")
        if workers > 1 and not redis:
            typer.secho(
                "  warning: without Redis, a Socket.IO client hears only the broadcasts of"
                " the worker it is connected to; set REDIS_URL",
                fg=typer.colors.YELLOW,
            )
        typer.echo(f"  Mail        {_mail_location(settings, ready)}")
        if ready.access_mode == "open":
            typer.secho(
                "  warning: AUTH_MODE=open: anyone who can reach this port may read and"
                " change everything (set AUTH_MODE=keys, see the README's Security)",
                fg=typer.colors.YELLOW,
            )
        else:
            typer.echo("  Access      API keys (AUTH_MODE=keys); anonymous: public views only")
        uvicorn.run(
            "eventms.app:create_asgi_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=logging_config(ready),
            access_log=False,  # the middleware writes one access line per request
            # Bounded: a Socket.IO long-poll holds its request for up to 45 s and
            # would otherwise hold the shutdown that long.
            timeout_graceful_shutdown=ready.shutdown_timeout,
            proxy_headers=False,
            http=HTTP_PROTOCOL,  # one write per answer, not two (http/protocol.py)
        )


def _cores() -> int:
    """The CPU cores this process may use (its affinity, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _workers(workers: int) -> str:
    how = "--workers / WEB_CONCURRENCY" if workers != _cores() else "one per CPU core"
    return f"{workers} worker process{'es' if workers > 1 else ''}, {how}"


def _mail_location(configured: Settings, ready: Settings) -> str:
    server = f"{ready.smtp_host}:{ready.smtp_port}"
    if configured.smtp_configured:
        where = f"SMTP {server} ({ready.smtp_security})"
    else:
        maildir = (configured.data_dir / "mail").resolve()
        where = f"embedded SMTP sink on {server}, every message kept in the Maildir {maildir}"
    worker = "a worker in-process" if ready.worker_in_process else "no worker in-process"
    return f"{where}; {worker}"


@cli.command()
def worker(
    concurrency: int = typer.Option(None, min=1, help="jobs at once (default WORKER_CONCURRENCY)"),
    metrics_port: int | None = typer.Option(
        None, min=1, max=65535, help="serve /metrics on APP_HOST:PORT (default WORKER_METRICS_PORT)"
    ),
) -> None:
    """Run a mail worker: confirmations, reminders, the reminder sweep. Run as many as
    you like: PostgreSQL hands each job to one of them. On SIGTERM it stops taking
    jobs, gives the running ones SHUTDOWN_TIMEOUT seconds, puts back any still running
    and exits 0. It rides out database outages (reconnecting); when it keeps failing
    with the database up, it exits 1."""
    from eventms.notifications.supervisor import WorkerGaveUp
    from eventms.notifications.worker import run_worker
    from eventms.observability.metrics import serve_on_port

    settings = _settings()
    metrics_port = metrics_port or settings.worker_metrics_port
    _exit_cleanly_on_sigterm()  # procrastinate takes SIGTERM over while it runs
    with embedded_services(settings) as ready:
        _migrate(ready)
        typer.echo(f"eventms worker: mail via {_mail_location(settings, ready).split(';')[0]}")
        if metrics_port:
            try:
                serve_on_port(settings.app_host, metrics_port)
            except OSError as error:
                typer.secho(f"eventms: metrics port {metrics_port}: {error}", fg="red", err=True)
                raise typer.Exit(2) from None
            typer.echo(f"  metrics     http://{settings.app_host}:{metrics_port}/metrics")
        try:
            asyncio.run(run_worker(ready, concurrency=concurrency))
        except WorkerGaveUp as error:  # non-zero: the supervisor (compose, systemd) restarts it
            typer.secho(f"eventms worker: cannot recover, giving up: {error}", fg="red", err=True)
            raise typer.Exit(1) from None


keys_cli = typer.Typer(help="API keys (AUTH_MODE=keys), for operators.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")


def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction on the configured database."""
    from eventms.db.engine import create_engine, create_sessionmaker

    async def run() -> T:
        engine = create_engine(settings.sqlalchemy_url(), settings)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@keys_cli.command("create")
def keys_create(
    name: str = typer.Argument(..., help="a name for the key (who or what uses it)"),
    scope: list[str] = typer.Option(..., "--scope", help="a scope; repeat for several"),
) -> None:
    """Create an API key; its token is printed once, alone on the last line."""
    from eventms.access import service
    from eventms.access.scopes import Scope
    from eventms.errors import DomainError

    known = {s.value for s in Scope}
    unknown = [s for s in scope if s not in known]
    if unknown or not name.strip() or len(name.strip()) > 100:
        why = f"unknown scope {unknown[0]!r}" if unknown else "a name of 1 to 100 characters"
        typer.secho(f"eventms: {why} (scopes: {', '.join(sorted(known))})", err=True, fg="red")
        raise typer.Exit(2)
    settings = _settings()
    with embedded_services(settings) as ready:
        _migrate(ready)
        try:
            key, token = _with_session(
                ready,
                lambda session: service.create_key(
                    session, name=name.strip(), scopes=[Scope(s) for s in scope]
                ),
            )
        except DomainError as error:
            typer.secho(f"eventms: {error.message}", err=True, fg="red")
            raise typer.Exit(1) from None
    typer.echo(f"created API key {key.name} ({', '.join(key.scopes)}); its token, shown once:")
    typer.echo(token)


@keys_cli.command("list")
def keys_list() -> None:
    """List the active API keys (never their tokens)."""
    from eventms.access import service

    settings = _settings()
    with embedded_services(settings) as ready:
        _migrate(ready)
        keys = _with_session(ready, lambda session: service.list_keys(session))
    if not keys:
        typer.echo("no API keys")
    for key in keys:
        made = key.created_at.isoformat(timespec="seconds")
        typer.echo(f"{key.name}  {' '.join(key.scopes)}  created {made}  id {key.id}")


@keys_cli.command("revoke")
def keys_revoke(name: str = typer.Argument(..., help="the key's name")) -> None:
    """Revoke an API key: every instance refuses it within 5 seconds."""
    from eventms.access import service
    from eventms.errors import DomainError

    settings = _settings()
    with embedded_services(settings) as ready:
        _migrate(ready)
        try:
            _with_session(ready, lambda session: service.revoke_key(session, name=name))
        except DomainError as error:
            typer.secho(f"eventms: {error.message}", err=True, fg="red")
            raise typer.Exit(1) from None
    typer.echo(f"revoked API key {name}")


mail_cli = typer.Typer(help="Mail jobs, for operators.", no_args_is_help=True)
cli.add_typer(mail_cli, name="mail")


@mail_cli.command("failed")
def mail_failed(limit: int = typer.Option(100, min=1, help="how many, newest first")) -> None:
    """List mail that could not be delivered (out of attempts, or refused for good)."""
    from eventms.notifications.worker import list_failed_mail

    settings = _settings()
    with embedded_services(settings) as ready:
        failed = asyncio.run(list_failed_mail(ready, limit=limit))
    if not failed:
        typer.echo("no failed mail")
        return
    for mail in failed:
        when = mail.failed_at.isoformat(timespec="seconds") if mail.failed_at else "?"
        typer.echo(
            f"{when}  job {mail.job_id}  {mail.task}  to {mail.recipient or '(registration gone)'}"
            f"  event {mail.event or '?'}  registration {mail.registration_id}"
            f"  after {mail.attempts} attempt(s)"
        )


@cli.command()
def seed(
    events: int = typer.Option(200, min=0, help="how many events to create"),
    attendees: int = typer.Option(10_000, min=0, help="how many attendees to create"),
) -> None:
    """Fill the database with demo data (events and attendees)."""
    from eventms.cache.invalidation import invalidate_everything
    from eventms.seed import seed_database

    settings = _settings()
    with embedded_services(settings) as ready:
        _migrate(ready)
        made = asyncio.run(seed_database(ready, events=events, attendees=attendees))
        # The rows did not come through the API: nothing cached before may be served.
        asyncio.run(invalidate_everything(ready))
    typer.echo(f"seeded {made[0]} events and {made[1]} attendees")


def main() -> None:
    from eventms.observability.logging import configure_logging

    try:
        configure_logging(get_settings())
    except ConfigError:  # reported, naming the variable, by the command itself
        logging.basicConfig(level=logging.INFO)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        cli()
    except ConfigError as error:
        typer.secho(f"eventms: {error}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except Terminated:
        sys.exit(0)
