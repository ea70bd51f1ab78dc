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
    from .recording import Destination

#: ``progress(bytes_done, bytes_total)``; sinks call it as the upload advances.
Progress = Callable[[int, int], None]


def writes_locally(sink: object) -> bool:
    """The sink's ``writes_locally`` capability; ``True`` (the cautious answer) if undeclared."""
    value = getattr(sink, "writes_locally", True)
    return value if isinstance(value, bool) else True


@dataclass(frozen=True)
class StoredObject:
    """Where a recording was stored. ``location`` never contains a secret."""

    location: str
    size: int


@runtime_checkable
class Sink(Protocol):
    """A storage provider. ``name`` is its ``destination.provider`` value.

    Capabilities the core reads (declare them as class attributes):

    ``needs_credentials``
        True when the sink needs ``accessKeyId`` / ``accessKeySecret``.
    ``writes_locally``
        True when the sink writes on the machine recfw runs on (a folder, or a
        URL that may be ``file://``). A meeting created through the REST API
        may then not choose the destination's place (an API caller could make
        the server write wherever it has permission); the organization default
        may. Not a required member, so older sinks still register; one that
        does not declare it counts as writing locally.
        :class:`recfw.testing.contracts.SinkContract` requires it.
    """

    name: str
    needs_credentials: bool

    def validate(self, destination: Destination) -> list[FieldError]:
        """Return the provider-specific problems of ``destination`` (no I/O)."""
        ...

    def store(
        self,
        path: Path,
        key: str,
        destination: Destination,
        progress: Progress | None,
        *,
        content_type: str | None = None,
    ) -> StoredObject:
        """Copy ``path`` to ``key`` under the destination's prefix and confirm it.

        ``content_type`` is the encoder's MIME type (``video/x-matroska``), for
        stores that keep one with the object (S3's ``Content-Type``); others
        ignore it. (A sink whose ``store`` does not take it is still called,
        without it.)

        Must not delete or move ``path``: the engine removes the local copy
        itself once this returned. Raise ``StorageError`` naming the problem
        (bad credentials, missing bucket, unreachable endpoint, size mismatch).
        """
        ...


@dataclass(frozen=True)
class TransferOptions:
    """How long a network sink waits and how often it tries (config file ``[storage]``).

    ``connect_timeout``: seconds to open a connection; ``read_timeout``: seconds
    to wait for an answer; ``attempts``: tries per request (1 = no retry);
    ``stale_uploads_after``: seconds after which an unfinished multipart
    upload of a recfw recording is taken as abandoned and aborted. Sinks that
    talk to a network read :func:`transfer_options` when they store.
    """

    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    attempts: int = 3
    stale_uploads_after: float = 24 * 3600.0


#: ``[storage]`` key -> (attribute, smallest, largest).
_TRANSFER_FIELDS = {
    "connectTimeout": ("connect_timeout", 0.1, 600.0),
    "readTimeout": ("read_timeout", 0.1, 3600.0),
    "attempts": ("attempts", 1, 20),
    "staleUploadsAfter": ("stale_uploads_after", 60.0, 30 * 24 * 3600.0),
}

_transfer = TransferOptions()


def parse_transfer_options(data: object, errors: list[FieldError]) -> TransferOptions:
    """The ``[storage]`` table of a config file; problems go to ``errors`` by field name."""
    from .errors import FieldError

    if data is None:
        return TransferOptions()
    if not isinstance(data, dict):
        errors.append(FieldError("storage", "must be a table"))
        return TransferOptions()
    values: dict[str, float | int] = {}
    for key, value in data.items():
        spec = _TRANSFER_FIELDS.get(key)
        if spec is None:
            known = ", ".join(_TRANSFER_FIELDS)
            errors.append(FieldError(f"storage.{key}", f"unknown field (known: {known})"))
            continue
        attr, low, high = spec
        integer = isinstance(low, int)
        ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type or not low <= value <= high:
            kind = "a whole number" if integer else "a number of seconds"
            errors.append(
                FieldError(f"storage.{key}", f"must be {kind} from {low} to {high}, not {value!r}")
            )
            continue
        values[attr] = value if integer else float(value)
    return TransferOptions(**values)  # type: ignore[arg-type]


def transfer_options() -> TransferOptions:
    """The process' transfer options (set from the config file at start)."""
    return _transfer


def set_transfer_options(options: TransferOptions) -> TransferOptions:
    """Make ``options`` the process' transfer options; returns the previous ones."""
    global _transfer
    previous, _transfer = _transfer, options
    return previous
