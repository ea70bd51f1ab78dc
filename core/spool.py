"""The spool: where recordings wait on local disk until storage has confirmed them.

Every recording is written here first (``.recfw/spool/`` by default). A file
that stays here is one that storage did not confirm — a failed upload (bad
credentials, missing bucket, unreachable endpoint) or a process that died while
recording. Nothing here is ever deleted except by :func:`recfw.storing.store_recording`
after the sink confirmed the remote copy — and an *empty* file (below).

A recording holds its file under an exclusive ``flock`` (:class:`SpoolLock`)
until it is stored; so does every upload of it. :func:`pending` reports a
locked file as in use, and :func:`upload_file` skips it, so any number of
uploaders (``recfw spool upload`` twice at once, a background uploader) can
run side by side: each file is stored by exactly one of them, the others see
it as busy or, once it is stored and removed, as gone ("someone else stored
it") — never as an error.

A file still empty :data:`EMPTY_GRACE` seconds after it was created is a
recording killed before its first write: :func:`upload_file` removes it and
reports it as ``empty`` (there is nothing to store or to keep).

Where a file goes is the caller's choice per file: ``destination`` may be one
:class:`~recfw.settings.Destination` for all, or a function of the file's path.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable
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
#: Seconds an empty spool file is left alone (a recording may be creating it right now).
EMPTY_GRACE = 60.0


class SpoolFileBusy(StorageError):
    """The file is locked: a running recording or another upload holds it."""


class SpoolFileGone(StorageError):
    """The file is no longer in the spool: another uploader stored (and removed) it."""


@dataclass(frozen=True)
class SpoolEntry:
    """A recording waiting in the spool (``empty``: nothing was ever written to it)."""

    path: Path
    size: int
    in_use: bool
    mtime: float = 0.0

    @property
    def empty(self) -> bool:
        return self.size == 0


class SpoolLock:
    """An exclusive claim on a spool file: held by a recording from its first byte
    until storage has confirmed it (or failed), and by an upload meanwhile.

    Raises :class:`SpoolFileBusy` if another holds it, :class:`SpoolFileGone`
    if the file does not exist (or was removed while waiting for the lock).
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None
        try:
            self._fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise SpoolFileGone(
                f"{path.name} is no longer in the spool (another upload stored it)"
            ) from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise SpoolFileBusy(
                f"{path.name} is in use (a running recording or another upload holds it)",
                kept_at=str(path),
            ) from None
        # The lock is on the file we opened: is it still the one at ``path``? An
        # uploader that finished between our open and our lock has removed it.
        held = os.fstat(self._fd)
        try:
            now = os.stat(path)
        except FileNotFoundError:
            now = None
        if now is None or (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
            self.release()
            raise SpoolFileGone(f"{path.name} is no longer in the spool (another upload stored it)")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SpoolLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _is_new_and_empty(stat: os.stat_result, grace: float = EMPTY_GRACE) -> bool:
    """A file a recording may be creating this instant (created, not yet locked):
    probing its lock then would make the recording's own lock fail."""
    return stat.st_size == 0 and time.time() - stat.st_mtime < grace


def _in_use(path: Path) -> bool:
    try:
        SpoolLock(path).release()
    except SpoolFileBusy:
        return True
    except (SpoolFileGone, FileNotFoundError):
        return False
    return False


def pending(spool_dir: Path = DEFAULT_SPOOL_DIR) -> list[SpoolEntry]:
    """Recordings in ``spool_dir``, oldest first (``in_use``: being recorded or stored)."""
    if not spool_dir.is_dir():
        return []
    entries = []
    for path in spool_dir.iterdir():
        if path.name.startswith("."):
            continue
        try:  # a recording being stored right now may vanish under our feet
            stat = path.stat()
            if path.is_file():
                busy = _is_new_and_empty(stat) or _in_use(path)
                entry = SpoolEntry(path, stat.st_size, busy, stat.st_mtime)
                entries.append((stat.st_mtime, entry))
        except FileNotFoundError:
            continue
    return [entry for _, entry in sorted(entries, key=lambda pair: pair[0])]


@dataclass(frozen=True)
class UploadResult:
    """What became of one spooled file.

    ``outcome``: ``stored`` (``stored`` says where; the local copy is gone),
    ``gone`` (another uploader stored it), ``busy`` (locked: being recorded or
    stored right now; try later), ``empty`` (a recording killed before its
    first write: removed, nothing to store), ``failed`` (storing failed;
    ``message`` says why; the file stays).
    """

    path: Path
    outcome: str
    message: str = ""
    stored: StoredObject | None = None
    error: StorageError | None = None

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"


def upload_file(
    path: Path,
    destination: Destination | Callable[[Path], Destination],
    plugins: PluginRegistry,
    progress: Progress | None = None,
    *,
    empty_grace: float = EMPTY_GRACE,
) -> UploadResult:
    """Store one spooled recording under its own file name, holding its lock meanwhile.

    Never raises for what a concurrent uploader or recording explains (see
    :class:`UploadResult`); the local file is removed only once the sink has
    confirmed the remote copy (or when it is empty, see :data:`EMPTY_GRACE`).
    ``destination`` may be a function of the path (a per-file destination).
    """
    from .storing import content_type_for, store_recording

    path = Path(path)
    try:
        if _is_new_and_empty(os.stat(path), empty_grace):
            message = f"{path.name} is empty and new: a recording may be starting"
            return UploadResult(path, "busy", message, error=SpoolFileBusy(message))
    except FileNotFoundError:
        message = f"{path.name} is no longer in the spool (another upload stored it)"
        return UploadResult(path, "gone", message)
    try:
        with SpoolLock(path):
            size = os.stat(path).st_size
            if size == 0:
                return _empty(path, empty_grace)
            target = destination(path) if callable(destination) else destination
            content_type = content_type_for(path, plugins)
            stored = store_recording(path, path.name, target, plugins, progress, content_type)
            return UploadResult(path, "stored", stored=stored)
    except SpoolFileGone as exc:
        return UploadResult(path, "gone", str(exc), error=exc)
    except SpoolFileBusy as exc:
        return UploadResult(path, "busy", str(exc), error=exc)
    except StorageError as exc:
        return UploadResult(path, "failed", str(exc), error=exc)


def _empty(path: Path, grace: float) -> UploadResult:
    """Called with the lock held on an empty file: remove it once it is old enough."""
    if _is_new_and_empty(os.stat(path), grace):
        message = f"{path.name} is empty and new: a recording may be starting"
        return UploadResult(path, "busy", message, error=SpoolFileBusy(message))
    path.unlink()
    message = (
        f"{path.name} was empty (the recording was stopped before it wrote anything): "
        "recorded as failed and removed"
    )
    log.warning("%s", message)
    return UploadResult(path, "empty", message)


def upload(
    path: Path,
    destination: Destination | Callable[[Path], Destination],
    plugins: PluginRegistry,
    progress: Progress | None = None,
) -> StoredObject:
    """Store one spooled recording; remove it once confirmed. Raises instead of reporting:

    :class:`SpoolFileBusy` / :class:`SpoolFileGone` (see :class:`SpoolLock`),
    ``StorageError`` if storing failed or the file is empty (the file stays,
    unless it was an old empty one, which is removed).
    """
    result = upload_file(path, destination, plugins, progress)
    if result.outcome == "stored" and result.stored is not None:
        return result.stored
    raise result.error or StorageError(result.message)
