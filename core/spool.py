"""The spool: where recordings wait on local disk until storage has confirmed them.

Every recording is written here first (``.recfw/spool/`` by default). A file
that stays here is one that storage did not confirm — a failed upload (bad
credentials, missing bucket, unreachable endpoint) or a process that died while
recording. Nothing here is ever deleted except by :func:`recfw.storing.store_recording`
after the sink confirmed the remote copy.

A recording holds its file under an exclusive ``flock`` (:class:`SpoolLock`)
until it is stored; :func:`pending` reports such a file as in use and
:func:`upload` refuses it, so a retry never uploads (and then deletes) a
recording that is still running or being stored.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import StorageError

if TYPE_CHECKING:
    from .manager import Plugins
    from .settings import Destination
    from .storage import Progress, StoredObject

log = logging.getLogger(__name__)

DEFAULT_SPOOL_DIR = Path(".recfw") / "spool"


@dataclass(frozen=True)
class SpoolEntry:
    """A recording waiting in the spool."""

    path: Path
    size: int
    in_use: bool


class SpoolLock:
    """An exclusive claim on a spool file: held by a recording from its first byte
    until storage has confirmed it (or failed), and by :func:`upload` meanwhile."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise StorageError(
                f"{path.name} is in use by a running recording", kept_at=str(path)
            ) from None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SpoolLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _in_use(path: Path) -> bool:
    try:
        SpoolLock(path).release()
    except StorageError:
        return True
    return False


def pending(spool_dir: Path = DEFAULT_SPOOL_DIR) -> list[SpoolEntry]:
    """Recordings in ``spool_dir``, oldest first (``in_use``: still being written)."""
    if not spool_dir.is_dir():
        return []
    entries = []
    for path in sorted(spool_dir.iterdir(), key=lambda p: p.stat().st_mtime):
        if not path.is_file() or path.name.startswith("."):
            continue
        entries.append(SpoolEntry(path, path.stat().st_size, in_use=_in_use(path)))
    return entries


def upload(
    path: Path, destination: Destination, plugins: Plugins, progress: Progress | None = None
) -> StoredObject:
    """Store one spooled recording under its own file name; remove it once confirmed.

    Raises ``StorageError`` (the file stays) if storing fails or a running
    recording still holds the file.
    """
    from .storing import store_recording

    with SpoolLock(path):
        return store_recording(path, path.name, destination, plugins, progress)
