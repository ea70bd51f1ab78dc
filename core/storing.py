"""Hand a finished recording to its sink; delete the local file only once it is stored.

:func:`store_recording` is the one place the engine stores a file. Nothing is
lost: the local (spool) file is removed only after the sink returned a
confirmed :class:`~recfw.storage.StoredObject`. On any failure the file stays
where it is and a :class:`~recfw.errors.StorageError` says what went wrong and
where the file was kept (``kept_at``).
"""

from __future__ import annotations

import inspect
import logging
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import RecfwError, StorageError, describe
from .naming import join_key
from .secrets import mask_secrets
from .storage import Progress, Sink, StoredObject

if TYPE_CHECKING:
    from .recording import Destination
    from .registry import PluginRegistry

log = logging.getLogger(__name__)

#: Longest file name (the key's last part) in UTF-8 bytes, as most filesystems allow.
MAX_KEY_BYTES = 255


def check_key(key: str, prefix: str = "") -> str:
    """``prefix/key`` if ``key`` is a safe file name; ``ValueError`` naming the problem if not.

    Safe: non-empty, at most 255 bytes, no ``/`` or ``\\``, not ``.``/``..``, no
    control or invisible characters. The result never escapes ``prefix``.
    """
    if not isinstance(key, str) or not key:
        raise ValueError("the file name is empty")
    if "\\" in key:
        raise ValueError(f"unsafe file name {key!r}: contains '\\'")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in key):
        raise ValueError(f"unsafe file name {key!r}: contains control characters")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"file name longer than {MAX_KEY_BYTES} bytes")
    return join_key(prefix, key)


def store_recording(
    local_path: Path,
    key: str,
    destination: Destination,
    plugins: PluginRegistry,
    progress: Progress | None = None,
    content_type: str | None = None,
) -> StoredObject:
    """Store ``local_path`` as ``key`` under ``destination``; then delete ``local_path``.

    ``content_type`` (the encoder's MIME type) is handed to the sink.

    Raises :class:`StorageError` (with ``kept_at`` = ``local_path``) if the key
    is unsafe, the provider is not installed, or the sink fails in any way
    (a sink's unexpected exception is wrapped and names the sink). The local
    file is deleted only when the sink returned.
    """
    local_path = Path(local_path)
    kept_at = str(local_path)
    if not local_path.is_file():
        raise StorageError(f"the recording {local_path} does not exist or is not a file")
    provider = destination.provider or ""
    try:
        check_key(key)
    except ValueError as exc:
        raise StorageError(
            f"refusing to store under an unsafe key: {exc}", kept_at=kept_at
        ) from None
    try:
        sink = plugins.sink(provider)
    except RecfwError as exc:
        raise StorageError(str(exc), kept_at=kept_at) from None
    sink_name = getattr(sink, "name", provider)
    try:
        if content_type and _takes_content_type(sink):
            stored = sink.store(local_path, key, destination, progress, content_type=content_type)
        else:
            stored = sink.store(local_path, key, destination, progress)
    except StorageError as exc:
        message = _scrub(_message_of(exc), destination)
        log.error("the %s sink could not store %s: %s", sink_name, local_path, message)
        raise StorageError(message, kept_at=kept_at) from None
    except Exception as exc:  # noqa: BLE001 - a plugin's bug must not lose the recording
        message = _scrub(f"the {sink_name!r} sink failed: {describe(exc, 300)}", destination)
        log.error("%s", message, exc_info=log.isEnabledFor(logging.DEBUG))
        raise StorageError(message, kept_at=kept_at) from None
    if not isinstance(stored, StoredObject):
        raise StorageError(
            f"the {sink_name!r} sink returned {type(stored).__name__}, not a StoredObject",
            kept_at=kept_at,
        )
    try:
        local_path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:  # stored, but the spool copy stays: not an error
        log.warning("stored %s but could not delete %s: %s", stored.location, local_path, exc)
    log.info("stored %s as %s (%d bytes)", local_path.name, stored.location, stored.size)
    return stored


def _takes_content_type(sink: Sink) -> bool:
    """Whether ``sink.store`` takes ``content_type`` (sinks written before it did not)."""
    try:
        parameters = inspect.signature(sink.store).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.name == "content_type" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters
    )


def content_type_for(path: Path, plugins: PluginRegistry) -> str | None:
    """The content type of the installed encoder whose extension ``path`` has, if any."""
    extension = path.suffix.lstrip(".").lower()
    for name in plugins.encoder_names():
        encoder = plugins.encoder(name)
        if getattr(encoder, "extension", "").lower() == extension:
            return getattr(encoder, "content_type", None)
    return None


def _message_of(exc: StorageError) -> str:
    """The message without a ``(the recording was kept at ...)`` a sink may have added."""
    text = str(exc)
    if exc.kept_at:
        suffix = f" (the recording was kept at {exc.kept_at})"
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    return text


def _scrub(message: str, destination: Destination) -> str:
    return mask_secrets(message, destination.access_key_secret)


__all__ = ["store_recording", "check_key"]
