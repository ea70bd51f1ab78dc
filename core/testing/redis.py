"""A real Redis server for tests, from Debian's ``redis-server`` package.

::

    with RedisServer() as server:
        server.url             # redis://127.0.0.1:<port>/0
        server.kill()          # gone at once (like a crash); start() brings it back

It runs ``redis-server`` on ``127.0.0.1`` at a free port, in a temporary folder,
with persistence off (``--save '' --appendonly no``) and no unix socket, and stops
it (SIGTERM, then SIGKILL) when the ``with`` block ends.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: Seconds the server has to answer after it was started.
START_TIMEOUT = 30.0


class RedisUnavailable(RuntimeError):
    """Debian's ``redis-server`` is not installed (``make system-deps`` installs it)."""


def find_redis_server() -> str:
    """The ``redis-server`` program, or :class:`RedisUnavailable`."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").is_file() else None
    )
    if found is None:
        raise RedisUnavailable(
            "redis-server is not installed: run `make system-deps` "
            "or `apt-get install redis-server`"
        )
    return found


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class RedisServer:
    """A throw-away Redis server on loopback, as a context manager."""

    def __init__(self, *, host: str = "127.0.0.1", password: str | None = None):
        self.host = host
        self.password = password
        self.port = 0
        self.folder: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def start(self) -> RedisServer:
        program = find_redis_server()
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="recfw-redis-"))
        self.port = self.port or _free_port(self.host)
        args = [
            program,
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--dir",
            str(self.folder),
            "--save",
            "",
            "--appendonly",
            "no",
            "--unixsocket",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            "--logfile",
            str(self.folder / "redis.log"),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"redis-server exited: {err.strip() or self.server_log()}")
            if self._answers():
                log.info("redis-server on %s:%d", self.host, self.port)
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT:g} s")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                if self.password:
                    sock.sendall(f"AUTH {self.password}\r\n".encode())
                    sock.recv(64)
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def server_log(self) -> str:
        if self.folder is None:
            return ""
        try:
            return (self.folder / "redis.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the server (the folder stays, so :meth:`start` can bring it back)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


__all__ = ["RedisServer", "RedisUnavailable", "find_redis_server"]
