"""Settings: the original service's `.env` names, plus URLs, read in one place.

Every other module receives a `Settings` object; nothing else reads `os.environ`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
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

    # PostgreSQL: DATABASE_URL wins over the DB_* parts; neither means embedded.
    database_url: str | None = None
    db_host: str | None = None
    db_port: int = Field(5432, ge=1, le=65535)
    db_username: str = "postgres"
    db_password: str = ""
    db_name: str = "event-management"
    db_pool_size: int = Field(10, ge=1)
    db_max_overflow: int = Field(10, ge=0)

    # Where the embedded engines keep their data when nothing is configured.
    data_dir: Path = Path("var")

    # Lists: `?limit=` default and ceiling.
    page_size_default: int = Field(100, ge=1)
    page_size_max: int = Field(1000, ge=1)

    @field_validator("database_url", "db_host", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def database_configured(self) -> bool:
        return bool(self.database_url or self.db_host)

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
        return self.sqlalchemy_url().set(drivername="postgresql").render_as_string(
            hide_password=False
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
