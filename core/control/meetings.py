"""Meetings in the database: create, get, list, close and (softly) delete."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import RecfwError
from .models import Meeting, new_id, utcnow
from .pagination import Page
from .query import paginate

#: Whereby deletes a meeting this long after its end date.
DELETE_AFTER_END = timedelta(hours=1)


class RoomNameTaken(RecfwError):
    """Another meeting (even a deleted one) already has this room name."""


class MeetingStore:
    """Meeting rows. Every method works in the caller's session (its transaction)."""

    def create(
        self,
        session: Session,
        *,
        room_name: str,
        end_date: datetime,
        room_url: str | None = None,
        meeting_id: str | None = None,
        start_date: datetime | None = None,
        room_name_prefix: str | None = None,
        room_name_pattern: str | None = None,
        room_mode: str | None = None,
        is_locked: bool = False,
        fields: Sequence[str] | None = None,
        template_type: str | None = None,
        recording: Mapping[str, Any] | None = None,
    ) -> Meeting:
        """Add a meeting; ``recording`` is its override in the REST shape (secrets are
        encrypted). Raises :class:`RoomNameTaken` if the room name was ever used."""
        meeting = Meeting(
            meeting_id=meeting_id or new_id(),
            room_name=room_name,
            room_url=room_url,
            start_date=start_date or utcnow(),
            end_date=end_date,
            room_name_prefix=room_name_prefix,
            room_name_pattern=room_name_pattern,
            room_mode=room_mode,
            is_locked=is_locked,
            fields=list(fields) if fields is not None else None,
            template_type=template_type,
        )
        meeting.set_recording(recording)
        if self.room_name_used(session, room_name):
            raise RoomNameTaken(f"the room name {room_name!r} is taken")
        try:
            with session.begin_nested():
                session.add(meeting)
        except IntegrityError:  # taken by a concurrent transaction
            raise RoomNameTaken(f"the room name {room_name!r} is taken") from None
        return meeting

    def room_name_used(self, session: Session, room_name: str) -> bool:
        """Whether any meeting, deleted ones included, has ``room_name``."""
        found = session.scalar(select(Meeting.meeting_id).where(Meeting.room_name == room_name))
        return found is not None

    def get(self, session: Session, meeting_id: str, *, deleted: bool = False) -> Meeting | None:
        """The meeting ``meeting_id`` (``None`` if unknown, or deleted unless ``deleted``)."""
        meeting = session.get(Meeting, meeting_id)
        if meeting is None or (meeting.deleted_at is not None and not deleted):
            return None
        return meeting

    def by_room(self, session: Session, room_name: str, *, deleted: bool = False) -> Meeting | None:
        """The meeting whose room is ``room_name``."""
        stmt = select(Meeting).where(Meeting.room_name == room_name)
        meeting = session.scalar(stmt)
        if meeting is None or (meeting.deleted_at is not None and not deleted):
            return None
        return meeting

    def list(
        self,
        session: Session,
        *,
        cursor: str | None = None,
        limit: int = 50,
        descending: bool = False,
    ) -> Page[Meeting]:
        """Meetings not deleted, oldest first (``descending``: newest first)."""
        stmt = select(Meeting).where(Meeting.deleted_at.is_(None))
        return paginate(
            session,
            stmt,
            Meeting.created_at,
            Meeting.meeting_id,
            descending=descending,
            cursor=cursor,
            limit=limit,
        )

    def delete(self, session: Session, meeting_id: str, now: datetime | None = None) -> bool | None:
        """Mark a meeting deleted: ``True`` now, ``False`` if it already was, ``None`` if unknown.

        The row stays, so its room name is never reused and DELETE stays idempotent.
        """
        meeting = session.get(Meeting, meeting_id)
        if meeting is None:
            return None
        if meeting.deleted_at is not None:
            return False
        now = now or utcnow()
        meeting.deleted_at = now
        if meeting.closed_at is None:
            meeting.closed_at = now
        return True

    def close(self, session: Session, meeting_id: str, now: datetime | None = None) -> bool:
        """Mark a meeting's room closed (its end date passed); ``False`` if it already was."""
        meeting = session.get(Meeting, meeting_id)
        if meeting is None or meeting.closed_at is not None:
            return False
        meeting.closed_at = now or utcnow()
        return True

    def due_to_close(
        self, session: Session, now: datetime, limit: int = 100
    ) -> builtins.list[Meeting]:
        """Open meetings whose end date has passed."""
        stmt = (
            select(Meeting)
            .where(
                Meeting.closed_at.is_(None),
                Meeting.deleted_at.is_(None),
                Meeting.end_date <= now,
            )
            .order_by(Meeting.end_date)
            .limit(limit)
        )
        return list(session.scalars(stmt))

    def due_to_delete(
        self, session: Session, now: datetime, after: timedelta = DELETE_AFTER_END, limit: int = 100
    ) -> builtins.list[Meeting]:
        """Meetings not yet deleted whose end date is more than ``after`` ago."""
        stmt = (
            select(Meeting)
            .where(Meeting.deleted_at.is_(None), Meeting.end_date <= now - after)
            .order_by(Meeting.end_date)
            .limit(limit)
        )
        return list(session.scalars(stmt))


__all__ = ["DELETE_AFTER_END", "MeetingStore", "RoomNameTaken"]
