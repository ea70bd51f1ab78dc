"""Helpers shared by the built-in sinks: sizes, sub-folder checks, progress callbacks.

Free names for a taken key are :func:`recfw.naming.free_names`.

Field names in a sink's :class:`FieldError` are relative to the destination
(``"bucket"``, ``"endpointUrl"``): :func:`recfw.settings.validate` reports them
as ``recording.destination.bucket``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from pathlib import Path

from fsspec.callbacks import Callback
from recfw.errors import FieldError, StorageError
from recfw.storage import Progress


def local_size(path: Path) -> int:
    """The size of the recording to store; ``StorageError`` if it cannot be read."""
    try:
        return path.stat().st_size
    except OSError as exc:
        raise StorageError(f"cannot read the recording {path}: {exc.strerror}") from None


def has_control_chars(text: str) -> bool:
    """True for any control, format (invisible) or unassigned character."""
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in text)


def prefix_errors(prefix: str, field: str) -> list[FieldError]:
    """Problems of a sub-folder prefix: ``..``/``.`` segments, control characters."""
    errors = []
    segments = [s for s in prefix.split("/") if s]
    if any(s in (".", "..") for s in segments):
        errors.append(FieldError(field, "the sub-folder must not contain '.' or '..' segments"))
    if has_control_chars(prefix):
        errors.append(FieldError(field, "the sub-folder must not contain control characters"))
    if "\\" in prefix:
        errors.append(FieldError(field, "the sub-folder must use '/' as separator, not '\\'"))
    return errors


class ProgressCallback(Callback):
    """An fsspec callback that reports to a recfw ``progress(done, total)``."""

    def __init__(self, progress: Progress | None, total: int):
        super().__init__(size=total, value=0)
        self._progress = progress
        self._total = total

    def set_size(self, size: int) -> None:  # fsspec may set it itself
        self.size = size

    def call(self, *args, **kwargs) -> None:
        if self._progress is not None:
            self._progress(min(int(self.value), self._total), self._total)


def report(progress: Progress | None) -> Callable[[int, int], None]:
    """``progress`` or a no-op, so sinks can call it unconditionally."""
    return progress if progress is not None else (lambda done, total: None)
