"""The server's secret key (`SECRET_KEY`): what manage links are signed with.

Production must name it (every instance and worker needs the same one, and
`Settings.production_problems` says so). Elsewhere a random key is made once and kept
in `<DATA_DIR>/secret_key`, so that every `serve` process, the workers and restarts
on this host share it without any set-up.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from eventms.config import ConfigError, Settings

FILE_NAME = "secret_key"


def load_secret_key(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    if settings.app_env == "production":
        raise ConfigError("SECRET_KEY is not set (required with APP_ENV=production)")
    return _kept_key(settings.data_dir / FILE_NAME)


def _kept_key(path: Path) -> bytes:
    """The key in `path`, made on first use. Processes starting together may race to
    make it: each writes its own into a private file and links it into place, which
    succeeds for exactly one of them; the others read the winner's."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48) + "\n")
        try:
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if len(key) < 32:
        raise ConfigError(f"{path} holds no usable key: delete it to make a new one")
    return key.encode()
