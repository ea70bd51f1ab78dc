"""Query parameters shared by the list paths: ``limit`` (1..100, default 50)."""

from __future__ import annotations

from collections.abc import Mapping

from ..control.pagination import MAX_LIMIT
from ..errors import FieldError, SettingsError

DEFAULT_LIMIT = 50


def int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """The integer query parameter ``name`` in ``low..high``; ``SettingsError`` naming it."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise SettingsError([FieldError(name, f"must be an integer from {low} to {high}")])
    return value


def limit_param(query: Mapping[str, str]) -> int:
    return int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)


__all__ = ["DEFAULT_LIMIT", "int_param", "limit_param"]
