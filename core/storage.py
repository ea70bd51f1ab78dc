"""The sinks' contract: store a finished local file under a key, or fail loudly.

A sink never knows what format it stores. It is given the path of a complete
local file, the object key (file name, already made safe) and the meeting's
destination settings, and returns where the file now is. It must raise
:class:`recfw.errors.StorageError` (never return) when the remote copy is not
confirmed; the engine then keeps the local file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .errors import FieldError
    from .settings import Destination

#: ``progress(bytes_done, bytes_total)``; sinks call it as the upload advances.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class StoredObject:
    """Where a recording was stored. ``location`` never contains a secret."""

    location: str
    size: int


@runtime_checkable
class Sink(Protocol):
    """A storage provider. ``name`` is its ``destination.provider`` value."""

    name: str
    #: True when the sink needs ``accessKeyId`` / ``accessKeySecret``.
    needs_credentials: bool

    def validate(self, destination: Destination) -> list[FieldError]:
        """Return the provider-specific problems of ``destination`` (no I/O)."""
        ...

    def store(
        self, path: Path, key: str, destination: Destination, progress: Progress | None
    ) -> StoredObject:
        """Copy ``path`` to ``key`` under the destination's prefix and confirm it.

        Must not delete or move ``path``: the engine removes the local copy
        itself once this returned. Raise ``StorageError`` naming the problem
        (bad credentials, missing bucket, unreachable endpoint, size mismatch).
        """
        ...
