"""Helpers shared by the stores: keyset pagination and row locking."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, func, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from ..errors import FieldError, SettingsError
from .pagination import Page, check_limit, decode_cursor, encode_cursor

T = TypeVar("T")


def paginate(
    session: Session,
    stmt: Select[Any],
    sort: InstrumentedAttribute[Any],
    key: InstrumentedAttribute[Any],
    *,
    descending: bool = False,
    cursor: str | None = None,
    limit: int = 50,
    null_as: Any = None,
) -> Page[T]:
    """Rows of ``stmt`` ordered by ``(sort, key)``, after ``cursor``, at most ``limit``.

    ``null_as``: for a nullable ``sort`` column, the value a ``NULL`` sorts as.
    """
    check_limit(limit)
    column = sort
    if null_as is not None:
        sort = func.coalesce(sort, null_as)  # type: ignore[assignment]
    if cursor:
        value, last_key = decode_cursor(cursor)
        if null_as is not None and not isinstance(value, type(null_as)):
            raise SettingsError([FieldError("cursor", "is not a cursor for this list")])
        if null_as is None and (
            isinstance(sort.type.python_type, type)
            and issubclass(sort.type.python_type, datetime)
            and not (isinstance(value, datetime) and value.tzinfo is not None)
        ):
            raise SettingsError([FieldError("cursor", "is not a cursor for this list")])
        if descending:
            stmt = stmt.where(or_(sort < value, and_(sort == value, key < last_key)))
        else:
            stmt = stmt.where(or_(sort > value, and_(sort == value, key > last_key)))
    order = (sort.desc(), key.desc()) if descending else (sort.asc(), key.asc())
    rows = list(session.scalars(stmt.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        last_value = getattr(last, column.key)
        if last_value is None:
            last_value = null_as
        next_cursor = encode_cursor(last_value, getattr(last, key.key))
    return Page(rows, next_cursor)


def for_update_skip_locked(session: Session, stmt: Select[Any]) -> Select[Any]:
    """``stmt`` with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite's ``BEGIN IMMEDIATE``
    already makes the whole transaction exclusive)."""
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt
