"""File names of recordings: ``[room name]-[start time, ISO 8601 UTC].[ext]``.

A room name comes from users, so it is reduced to a safe file name: no path
separators, no ``.``/``..``, no control or invisible characters, bounded length.
Letters of any script are kept (NFC-normalised); anything else becomes ``_``.
The result never escapes the destination prefix it is joined to.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import PurePosixPath

#: How many names :func:`free_names` offers (the first one included).
MAX_FREE_NAMES = 1000

#: Longest room-name part of a key, in UTF-8 bytes (S3 keys may be 1024 bytes).
MAX_NAME_BYTES = 120
_ALLOWED_PUNCTUATION = "-_.()+,=@ "
_RUNS = re.compile(r"_{2,}")


def safe_room_name(room_name: str) -> str:
    """A room name made safe to be the first part of a file name (never empty)."""
    text = unicodedata.normalize("NFC", str(room_name)).strip().lstrip("/")
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in _ALLOWED_PUNCTUATION or category[0] in "LN" or category in ("Mn", "Mc"):
            out.append(ch)
        else:
            out.append("_")
    name = _RUNS.sub("_", "".join(out)).strip(" ._")
    name = name.replace(" ", "-")
    encoded = name.encode("utf-8")[:MAX_NAME_BYTES]
    name = encoded.decode("utf-8", errors="ignore").strip(" ._-")
    return name or "room"


def format_start_time(start: datetime) -> str:
    """``2026-11-23T19:40:05Z``: ISO 8601 in UTC, whole seconds."""
    if start.tzinfo is None:
        raise ValueError("start time must be timezone-aware")
    return start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def recording_file_name(room_name: str, start: datetime, extension: str) -> str:
    """``standup-2026-11-23T19:40:05Z.mkv`` for room ``standup``."""
    ext = extension.lstrip(".")
    if not re.fullmatch(r"[A-Za-z0-9]{1,10}", ext):
        raise ValueError(f"unsafe file extension {extension!r}")
    return f"{safe_room_name(room_name)}-{format_start_time(start)}.{ext}"


def join_key(prefix: str, name: str) -> str:
    """``prefix/name`` for a sub-folder prefix (``""`` for none)."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"unsafe file name {name!r}")
    parts = [p for p in prefix.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"unsafe prefix {prefix!r}")
    return "/".join([*parts, name])


def free_names(name: str, limit: int = MAX_FREE_NAMES) -> Iterator[str]:
    """``name``, then ``stem (2).ext``, ``stem (3).ext``, ...: candidates for a file that
    must never replace an existing one, ``limit`` names in all.

    The one convention for a taken name, in the spool and in every sink (as file
    managers and browsers do): a space and the number in parentheses before the
    extension. ``standup-2026-11-23T19:40:05Z.mkv`` -> ``standup-2026-11-23T19:40:05Z (2).mkv``.
    Only the last path segment's extension counts (``a.b/c`` -> ``a.b/c (2)``).
    """
    yield name
    suffix = PurePosixPath(name).suffix
    stem = name[: -len(suffix)] if suffix else name
    for n in range(2, limit + 1):
        yield f"{stem} ({n}){suffix}"
