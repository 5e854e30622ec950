"""Start and stop the embedded engines used when nothing is configured.

PostgreSQL comes from pgserver (the same server binary as production, data kept
in `<data_dir>/pg` across restarts). Nothing about the code path changes: the app
gets an ordinary connection URL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("eventms.embedded")

DATABASE = "eventms"


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    server: Any = field(default=None, repr=False)

    def start(self) -> str:
        """Start (or join) the server in `data_dir`; return a psycopg URL of its `eventms` db."""
        import pgserver  # imported here: only the embedded set-up needs it

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server = pgserver.get_server(self.data_dir, cleanup_mode="stop")
        exists = self.server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
        if "(1 row)" not in exists:
            self.server.psql(f'CREATE DATABASE "{DATABASE}";')
        socket_dir = self.server.get_uri().split("host=", 1)[1]
        return f"postgresql+psycopg://postgres@/{DATABASE}?host={socket_dir}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None
