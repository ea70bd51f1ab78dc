"""Cursor pagination: an opaque, URL-safe cursor holding the last row's sort key.

A page is the rows strictly after the cursor in ``(sort value, id)`` order, so
rows added or removed meanwhile never make a page repeat or skip one.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from ..errors import FieldError, SettingsError

T = TypeVar("T")
MAX_LIMIT = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows and the cursor of the next one (``None``: this was the last)."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(sort_value: Any, row_id: str) -> str:
    """An opaque cursor for the row with ``sort_value`` and ``row_id``."""
    if isinstance(sort_value, datetime):
        sort_value = {"t": sort_value.isoformat()}
    raw = json.dumps([sort_value, row_id], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, field: str = "cursor") -> tuple[Any, str]:
    """``(sort value, id)`` from :func:`encode_cursor`; ``SettingsError`` naming ``field``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, row_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if isinstance(value, dict) and set(value) == {"t"}:
            value = datetime.fromisoformat(value["t"])
        if not isinstance(row_id, str):
            raise ValueError
        return value, row_id
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise SettingsError(
            [FieldError(field, "is not a cursor this server gave out (pass it back unchanged)")]
        ) from None


def check_limit(limit: int, field: str = "limit") -> int:
    """``limit`` if it is 1..100; else ``SettingsError`` naming ``field``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise SettingsError([FieldError(field, f"must be an integer from 1 to {MAX_LIMIT}")])
    return limit


__all__ = ["MAX_LIMIT", "Page", "check_limit", "decode_cursor", "encode_cursor"]
