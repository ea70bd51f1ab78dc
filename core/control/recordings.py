"""Recordings in the database: a row from the first byte to ``stored`` (or ``kept``)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ..errors import FieldError, SettingsError
from .models import RECORDING_STATUSES, Recording, new_id, utcnow
from .pagination import Page
from .query import for_update_skip_locked, paginate

#: ``sortBy`` values (``<field>:<asc|desc>``; Whereby's four and ``createdAt``) and the
#: columns they sort by.
SORT_FIELDS = {
    "roomName": Recording.room_name,
    "startDate": Recording.start_date,
    "duration": Recording.duration_s,
    "sizeInMegaBytes": Recording.size_bytes,
    "createdAt": Recording.created_at,
}
#: What a missing value sorts as (a recording still running has no duration or size yet).
SORT_NULLS: dict[str, Any] = {"duration": -1.0, "sizeInMegaBytes": -1}
SORT_CHOICES = tuple(f"{f}:{d}" for f in SORT_FIELDS for d in ("asc", "desc"))
#: Statuses a background uploader takes on (``uploading`` only once its lease ran out).
UPLOADABLE = ("kept", "uploading")
_UNSET: Any = object()


def parse_sort(sort_by: str | None, field: str = "sortBy") -> tuple[Any, bool]:
    """``(column, descending)`` for a ``sortBy`` value; ``SettingsError`` naming ``field``."""
    if sort_by is None:
        return Recording.start_date, True
    name, _, direction = sort_by.partition(":")
    direction = direction or "asc"
    if name not in SORT_FIELDS or direction not in ("asc", "desc"):
        raise SettingsError([FieldError(field, f"must be one of {', '.join(SORT_CHOICES)}")])
    return SORT_FIELDS[name], direction == "desc"


class RecordingStore:
    """Recording rows. Every method works in the caller's session (its transaction)."""

    def create(
        self,
        session: Session,
        *,
        room_name: str,
        filename: str,
        destination: Mapping[str, Any] | None,
        recording_id: str | None = None,
        meeting_id: str | None = None,
        room_session_id: str | None = None,
        file_format: str | None = None,
        spool_path: str | None = None,
        node: str | None = None,
        start_date: datetime | None = None,
    ) -> Recording:
        """Add a recording in status ``recording`` with its own copy of ``destination``
        (REST shape; credentials encrypted)."""
        recording = Recording(
            recording_id=recording_id or new_id(),
            meeting_id=meeting_id,
            room_name=room_name,
            room_session_id=room_session_id,
            filename=filename,
            file_format=file_format,
            spool_path=spool_path,
            node=node,
            status="recording",
            start_date=start_date or utcnow(),
            attempts=0,
        )
        recording.set_destination(destination)
        session.add(recording)
        session.flush()
        return recording

    def get(
        self, session: Session, recording_id: str, *, deleted: bool = False
    ) -> Recording | None:
        """The recording ``recording_id`` (``None``: unknown, or deleted unless ``deleted``)."""
        recording = session.get(Recording, recording_id)
        if recording is None or (recording.deleted_at is not None and not deleted):
            return None
        return recording

    def by_spool_path(self, session: Session, spool_path: str) -> Recording | None:
        """The newest recording whose spool file is ``spool_path``."""
        stmt = (
            select(Recording)
            .where(Recording.spool_path == spool_path)
            .order_by(Recording.created_at.desc())
            .limit(1)
        )
        return session.scalar(stmt)

    def update(
        self,
        session: Session,
        recording: Recording | str,
        *,
        status: str | None = None,
        location: str | None = _UNSET,
        reason: str | None = _UNSET,
        size_bytes: int | None = _UNSET,
        end_date: datetime | None = _UNSET,
        duration_s: float | None = _UNSET,
        spool_path: str | None = _UNSET,
        next_attempt_at: datetime | None = _UNSET,
        attempts: int | None = None,
    ) -> Recording:
        """Change a recording's status and facts; arguments left out stay as they are."""
        row = recording if isinstance(recording, Recording) else session.get(Recording, recording)
        if row is None:
            raise KeyError(recording)
        if status is not None:
            if status not in RECORDING_STATUSES:
                raise ValueError(f"status must be one of {', '.join(RECORDING_STATUSES)}")
            row.status = status
        for name, value in (
            ("location", location),
            ("reason", reason),
            ("size_bytes", size_bytes),
            ("end_date", end_date),
            ("duration_s", duration_s),
            ("spool_path", spool_path),
            ("next_attempt_at", next_attempt_at),
        ):
            if value is not _UNSET:
                setattr(row, name, value)
        if attempts is not None:
            row.attempts = attempts
        row.updated_at = utcnow()
        session.flush()
        return row

    def list(
        self,
        session: Session,
        *,
        room_name: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        sort_by: str | None = None,
    ) -> Page[Recording]:
        """Recordings not deleted (of ``room_name`` if given), newest first by default."""
        column, descending = parse_sort(sort_by)
        null_as = SORT_NULLS.get((sort_by or "").partition(":")[0])
        stmt = select(Recording).where(Recording.deleted_at.is_(None))
        if room_name is not None:
            stmt = stmt.where(Recording.room_name == room_name.lstrip("/"))
        return paginate(
            session,
            stmt,
            column,
            Recording.recording_id,
            descending=descending,
            cursor=cursor,
            limit=limit,
            null_as=null_as,
        )

    def delete(
        self, session: Session, recording_id: str, now: datetime | None = None
    ) -> bool | None:
        """Mark a recording deleted (after its file was removed from storage): ``True`` now,
        ``False`` if it already was, ``None`` if unknown."""
        row = session.get(Recording, recording_id)
        if row is None:
            return None
        if row.deleted_at is not None:
            return False
        row.deleted_at = now or utcnow()
        row.updated_at = row.deleted_at
        return True

    def claim_uploads(
        self,
        session: Session,
        now: datetime,
        *,
        limit: int = 10,
        lease: timedelta = timedelta(minutes=30),
        node: str | None = None,
    ) -> builtins.list[Recording]:
        """Take kept recordings that are due for another upload attempt.

        Each claimed row becomes ``uploading`` with ``next_attempt_at = now +
        lease`` and one more attempt counted; commit, upload, then
        :meth:`update` it to ``stored`` or back to ``kept``. A claimer that dies
        leaves the row to be claimed again when the lease runs out. On
        PostgreSQL rows another claimer holds are skipped (``SKIP LOCKED``).
        Only rows of ``node`` (this machine's spool) are taken when it is given.
        """
        stmt = select(Recording).where(
            Recording.status.in_(UPLOADABLE),
            Recording.deleted_at.is_(None),
            # kept without a time: due now; uploading without one: a live upload.
            or_(
                Recording.next_attempt_at <= now,
                and_(Recording.status == "kept", Recording.next_attempt_at.is_(None)),
            ),
        )
        if node is not None:
            stmt = stmt.where(Recording.node == node)
        stmt = for_update_skip_locked(
            session, stmt.order_by(Recording.created_at, Recording.recording_id).limit(limit)
        )
        rows = list(session.scalars(stmt))
        for row in rows:
            row.status = "uploading"
            row.attempts += 1
            row.next_attempt_at = now + lease
            row.updated_at = now
        session.flush()
        return rows


__all__ = ["RecordingStore", "SORT_CHOICES", "parse_sort"]
