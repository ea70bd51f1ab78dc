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
    from .recording import Destination
    from .registry import PluginRegistry
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
    except FileNotFoundError:
        return False
    return False


def pending(spool_dir: Path = DEFAULT_SPOOL_DIR) -> list[SpoolEntry]:
    """Recordings in ``spool_dir``, oldest first (``in_use``: still being written)."""
    if not spool_dir.is_dir():
        return []
    entries = []
    for path in spool_dir.iterdir():
        if path.name.startswith("."):
            continue
        try:  # a recording being stored right now may vanish under our feet
            stat = path.stat()
            if path.is_file():
                entries.append((stat.st_mtime, SpoolEntry(path, stat.st_size, _in_use(path))))
        except FileNotFoundError:
            continue
    return [entry for _, entry in sorted(entries, key=lambda pair: pair[0])]


def upload(
    path: Path, destination: Destination, plugins: PluginRegistry, progress: Progress | None = None
) -> StoredObject:
    """Store one spooled recording under its own file name; remove it once confirmed.

    Raises ``StorageError`` (the file stays) if storing fails or a running
    recording still holds the file.
    """
    from .storing import content_type_for, store_recording

    with SpoolLock(path):
        if path.stat().st_size == 0:
            # Nothing was recorded (or a recording is this instant creating it).
            raise StorageError(f"{path.name} is empty: nothing to store", kept_at=str(path))
        content_type = content_type_for(path, plugins)
        return store_recording(path, path.name, destination, plugins, progress, content_type)
