"""Small helpers for the storage tests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

MiB = 1024 * 1024


def make_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; return their sha256."""
    data = os.urandom(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def closed_port() -> int:
    """A loopback TCP port nothing listens on (bound, then closed)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
