"""The ``local`` sink: recordings go to a folder on this machine.

``destination.bucket`` is the folder (relative paths are relative to the
current directory; the embedded default is ``recordings``). A file is first
hard-linked (same filesystem) or copied (anywhere else) to a hidden temporary
name in the folder, its size checked, and then given its final name in one
atomic step that never replaces an existing file: if ``standup-...Z.mkv``
already exists, the recording is stored as ``standup-...Z (2).mkv`` (then
``(3)``, ...). A half-copied file never carries a recording's name.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import uuid
from pathlib import Path

from recfw.defaults import DEFAULT_LOCAL_FOLDER
from recfw.errors import FieldError, StorageError
from recfw.naming import free_names, join_key
from recfw.recording import Destination
from recfw.storage import Progress, StoredObject

from ._common import has_control_chars, local_size, report

log = logging.getLogger(__name__)

_COPY_CHUNK = 4 * 1024 * 1024


class LocalSink:
    """Stores recordings in a local folder; never overwrites an existing file."""

    name = "local"
    needs_credentials = False
    writes_locally = True

    def folder(self, destination: Destination) -> Path:
        """The folder of ``destination`` (``recordings`` when unset)."""
        return Path(destination.bucket or DEFAULT_LOCAL_FOLDER).expanduser()

    def validate(self, destination: Destination) -> list[FieldError]:
        bucket = destination.bucket or ""
        if has_control_chars(bucket):
            return [FieldError("bucket", "the folder must not contain control characters")]
        return []

    def store(
        self,
        path: Path,
        key: str,
        destination: Destination,
        progress: Progress | None,
        *,
        content_type: str | None = None,
    ) -> StoredObject:
        progress = report(progress)
        try:
            name = join_key("", key)
        except ValueError as exc:
            raise StorageError(f"local sink: {exc}") from None
        folder = self.folder(destination)
        size = local_size(path)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the folder {folder}: {exc.strerror}") from None
        tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.partial"
        try:
            self._link_or_copy(path, tmp, size, progress)
            stored_size = tmp.stat().st_size
            if stored_size != size:
                raise StorageError(
                    f"the copy in {folder} has {stored_size} bytes, the recording {size}"
                )
            final = self._place(tmp, folder, name)
            _fsync_dir(folder)
        except OSError as exc:
            raise StorageError(
                f"cannot store the recording in {folder}: {exc.strerror or exc}"
            ) from None
        finally:
            tmp.unlink(missing_ok=True)
        progress(size, size)
        if final.name != name:
            log.warning("%s already existed; stored the recording as %s", folder / name, final)
        return StoredObject(location=str(final.absolute()), size=size)

    @staticmethod
    def _link_or_copy(src: Path, tmp: Path, size: int, progress) -> None:
        try:
            os.link(src, tmp)
            return
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise
            log.debug("cannot hard-link %s into %s (%s); copying", src, tmp.parent, exc)
        done = 0
        with open(src, "rb") as fin, open(tmp, "xb") as fout:
            while chunk := fin.read(_COPY_CHUNK):
                fout.write(chunk)
                done += len(chunk)
                progress(done, size)
            fout.flush()
            os.fsync(fout.fileno())
        shutil.copystat(src, tmp)

    @staticmethod
    def _place(tmp: Path, folder: Path, name: str) -> Path:
        """Give ``tmp`` the first free name of ``name``, ``name (2)``, ... atomically."""
        for candidate in free_names(name):
            target = folder / candidate
            try:
                os.link(tmp, target)  # fails if target exists: no silent overwrite
                return target
            except FileExistsError:
                continue
            except OSError as exc:  # no hard links here: rename after an existence check
                log.debug("cannot hard-link in %s (%s); renaming", folder, exc)
                if target.exists():
                    continue
                os.rename(tmp, target)
                return target
        raise StorageError(f"no free file name for {name} in {folder}")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
