"""A real PostgreSQL server for tests, from Debian's ``postgresql`` package.

::

    with PostgresServer() as pg:
        url = pg.create_database()     # a fresh, empty database
        ...                            # postgresql://postgres@127.0.0.1:<port>/<name>

It runs ``initdb`` into a temporary folder and starts ``postgres`` through
``pg_ctl`` on ``127.0.0.1`` at a free port, with its unix socket in that folder
too (``-c listen_addresses=127.0.0.1 -k <tmp>``), and stops it with ``pg_ctl
stop -m fast``. PostgreSQL refuses to run as root: as root the server runs as
the ``postgres`` system user (the folder is handed to it), otherwise as the
current user. Authentication is ``trust`` on loopback: test use only. A server
on a test network's address (see :mod:`recfw.testing.netns`) trusts the
networks given as ``trusted_networks`` too.

:func:`find_bin_dir` looks in ``RECFW_PG_BIN``, then Debian's
``/usr/lib/postgresql/<version>/bin`` (newest first), then ``PATH``.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

BIN_ENV = "RECFW_PG_BIN"
SYSTEM_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server programs are not installed (``make system-deps`` installs them)."""


def find_bin_dir() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    candidates: list[Path] = []
    if os.environ.get(BIN_ENV):
        candidates.append(Path(os.environ[BIN_ENV]))

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True)
    candidates += [Path(p).parent for p in debian]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise PostgresUnavailable(
        "PostgreSQL is not installed (no initdb/pg_ctl/postgres in "
        f"{BIN_ENV}, /usr/lib/postgresql/*/bin or PATH): run `make system-deps` "
        "or `apt-get install postgresql`"
    )


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A throw-away PostgreSQL server on loopback, as a context manager."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        bin_dir: Path | None = None,
        trusted_networks: tuple[str, ...] = (),
    ):
        self.host = host
        self.bin_dir = bin_dir
        #: Networks (CIDR) whose clients are trusted besides loopback (pg_hba.conf).
        self.trusted_networks = tuple(trusted_networks)
        self.port: int | None = None
        self.user = SYSTEM_USER if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
        self.superuser = "postgres"
        self.dir: Path | None = None
        self._running = False

    # --- lifecycle ----------------------------------------------------------

    def _run(self, *args: str | Path, check: bool = True, timeout: float = 120) -> str:
        """Run a server program (as the ``postgres`` user when we are root)."""
        command = [str(a) for a in args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.dir,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}"
            )
        return result.stdout

    def start(self) -> PostgresServer:
        bin_dir = self.bin_dir or find_bin_dir()
        self.bin_dir = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="recfw-pg-"))
        try:
            if os.geteuid() == 0:
                entry = pwd.getpwnam(self.user)
                os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            os.chmod(self.dir, 0o700)
            data = self.dir / "data"
            self._run(
                bin_dir / "initdb",
                "-D",
                data,
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            )
            if self.trusted_networks:
                with (data / "pg_hba.conf").open("a") as hba:
                    for network in self.trusted_networks:
                        hba.write(f"host all all {network} trust\n")
            for attempt in range(5):  # a free port may be taken between check and use
                self.port = _free_port(self.host)
                options = (
                    f"-c listen_addresses={self.host} -k {self.dir} -p {self.port} "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                    "-c max_connections=100 -c shared_buffers=16MB"
                )
                result_ok = True
                try:
                    self._run(
                        bin_dir / "pg_ctl",
                        "start",
                        "-D",
                        data,
                        "-w",
                        "-t",
                        "90",
                        "-l",
                        self.dir / "server.log",
                        "-o",
                        options,
                    )
                except RuntimeError:
                    result_ok = False
                if result_ok:
                    break
                log.warning("postgres did not start on port %s (attempt %d)", self.port, attempt)
            else:
                raise RuntimeError(f"postgres would not start:\n{self.server_log()}")
            self._running = True
            log.info("PostgreSQL on %s:%s (%s)", self.host, self.port, self.dir)
        except BaseException:
            self.stop()
            raise
        return self

    def server_log(self) -> str:
        if self.dir is None:
            return ""
        with contextlib.suppress(OSError):
            return (self.dir / "server.log").read_text(errors="replace")[-4000:]
        return ""

    def stop(self) -> None:
        if self.dir is None:
            return
        if self._running and self.bin_dir is not None:
            with contextlib.suppress(Exception):
                self._run(
                    self.bin_dir / "pg_ctl", "stop", "-D", self.dir / "data", "-m", "fast", "-w"
                )
            self._running = False
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- databases ----------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        """``postgresql://postgres@127.0.0.1:<port>/<database>``."""
        if not self._running:
            raise RuntimeError("the PostgreSQL server is not running (call start() first)")
        return f"postgresql://{self.superuser}@{self.host}:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE)."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=30) as conn:
            conn.execute(sql)

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        """A new database (a copy of ``template`` if given); return its URL."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        clause = f" TEMPLATE {template}" if template else ""
        for attempt in range(20):
            try:
                self.execute(f'CREATE DATABASE "{name}"{clause}')
                break
            except Exception as exc:  # the template may still be in use for a moment
                if "being accessed by other users" not in str(exc) or attempt == 19:
                    raise
                time.sleep(0.1)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


__all__ = ["PostgresServer", "PostgresUnavailable", "find_bin_dir"]
