"""Engine events into the control plane: the state they describe and the outbox, together.

:class:`ControlEvents` is the one place an engine event enters the database.
For each event it opens one transaction that updates what the event describes
(the recording's row) and adds the envelope to the outbox
(:meth:`recfw.control.outbox.Outbox.add`): both are committed, or neither.
The webhook worker (:mod:`recfw.control.delivery`) sends the outbox later.

A recording's row is written from its first byte (:meth:`recording_opened`,
called by the session right after it created and locked its spool file), with
its own copy of the destination it is meant for (credentials encrypted), so a
recording kept on local disk always goes to *its* destination later, never to
the organization default.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from ..events import RECORDING_FAILED, RECORDING_FINISHED, RECORDING_STARTED, Event
from ..times import iso_utc
from .models import Meeting, Recording, utcnow
from .outbox import Outbox
from .recordings import RecordingStore

if TYPE_CHECKING:
    from ..session import RecordingSession
    from ..settings import Destination
    from ..storage import StoredObject
    from .db import Database

log = logging.getLogger(__name__)

#: How long a kept recording waits before the background uploader's first retry.
FIRST_RETRY = timedelta(seconds=30)
#: Marks (inside a row's ``destination``) a recording made with the organization
#: default rather than a meeting's own destination: it follows the *current*
#: default (so fixed credentials apply), while a meeting's own never changes.
FOLLOWS_DEFAULT = "recfwFollowsDefault"


def this_node() -> str:
    """The name of this machine, as written in ``recordings.node``."""
    return socket.gethostname()


def recording_data(row: Recording, status: str | None = None) -> dict[str, Any]:
    """A ``recording.*`` event's ``data`` built from a recording's row (for events sent
    when no session is left: the background uploader, ``recfw spool upload``)."""
    destination = row.destination or {}
    data: dict[str, Any] = {
        "meetingId": row.meeting_id,
        "roomName": "/" + row.room_name.lstrip("/"),
        "roomSessionId": row.room_session_id,
        "recordingId": row.recording_id,
        "filename": row.filename,
        "fileName": row.filename,
        "fileFormat": row.file_format or destination.get("fileFormat"),
        "provider": destination.get("provider"),
        "startedAt": iso_utc(row.start_date),
    }
    if row.end_date is not None:
        data["stoppedAt"] = iso_utc(row.end_date)
    if row.duration_s is not None:
        data["durationSeconds"] = round(row.duration_s, 3)
    if row.location is not None:
        data["location"] = row.location
    if row.size_bytes is not None:
        data["size"] = row.size_bytes
    if status is not None:
        data["status"] = status
    if row.status in ("failed", "kept"):
        data["error"] = row.reason
        data["keptAt"] = row.spool_path if row.status == "kept" else None
    return data


class ControlEvents:
    """Records engine events in the control plane (one transaction each) and wakes the
    webhook worker. ``node`` names this machine's spool (see :func:`this_node`)."""

    def __init__(
        self,
        db: Database,
        *,
        node: str | None = None,
        default_destination: Destination | None = None,
    ):
        self.db = db
        self.node = node or this_node()
        #: The organization default (a recording made with it follows it, see
        #: :data:`FOLLOWS_DEFAULT`).
        self.default_destination = default_destination
        self.recordings = RecordingStore()
        #: Ids of the recordings a session of this process is recording or storing.
        self._live: set[str] = set()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    # --- who is told --------------------------------------------------------------

    def on_committed(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (no arguments, any thread) after each event is committed."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            try:
                listener()
            except Exception:  # noqa: BLE001 - a listener never fails an event
                log.exception("an outbox listener failed")

    def is_live(self, recording_id: str) -> bool:
        """Whether a session of this process still owns the recording."""
        with self._lock:
            return recording_id in self._live

    def keep_live(self, recording_id: str, live: bool = True) -> None:
        """Say that this process owns the recording (``live=False``: no longer), though
        no session of it runs here: a queue worker's job, whose row the room server
        finishes. The background uploader never takes such a row for a crashed one."""
        with self._lock:
            if live:
                self._live.add(recording_id)
            else:
                self._live.discard(recording_id)

    # --- from the engine ----------------------------------------------------------

    def recording_opened(self, session: RecordingSession) -> None:
        """The session created (and locked) its spool file: the recording's row, status
        ``recording``, with its own destination."""
        with self._lock:
            self._live.add(session.recording_id)
        with self.db.session() as s:
            self._create_row(s, session)

    def publish(self, event: Event) -> None:
        """Update what ``event`` describes and add it to the outbox, in one transaction
        (a ``recording.finished`` of a recording already stored is not sent again)."""
        with self.db.session() as s:
            if self.apply(s, event):
                Outbox.add(s, event.to_dict())
        self._notify()

    def apply(self, s: Session, event: Event) -> bool:
        """The state change ``event`` stands for, in the caller's transaction. ``False``
        when the event repeats what the row already says (a stored recording's
        ``recording.finished``, told by another process first): not to be sent again."""
        session = event.subject
        if session is None or not event.type.startswith("recording."):
            return True
        row = s.get(Recording, session.recording_id)
        if row is None:
            row = self._create_row(s, session)
        if event.type == RECORDING_STARTED:
            return True
        end = session.stopped_at
        if event.type == RECORDING_FINISHED and row.status == "stored":
            with self._lock:
                self._live.discard(session.recording_id)
            return False
        if event.type == RECORDING_FINISHED and session.stored is not None:
            self.recordings.update(
                s,
                row,
                status="stored",
                location=session.stored.location,
                size_bytes=session.stored.size,
                end_date=end,
                duration_s=session.duration_s,
                reason=None,
                next_attempt_at=None,
            )
        elif event.type == RECORDING_FAILED:
            kept = session.kept_at
            size = session.size
            if kept is not None and size is None:
                try:
                    size = Path(kept).stat().st_size
                except OSError:
                    size = None
            self.recordings.update(
                s,
                row,
                status="kept" if kept else "failed",
                reason=session.error,
                spool_path=kept or row.spool_path,
                size_bytes=size,
                end_date=end or utcnow(),
                duration_s=session.duration_s,
                next_attempt_at=utcnow() + FIRST_RETRY if kept else None,
            )
        with self._lock:
            self._live.discard(session.recording_id)
        return True

    def _create_row(self, s: Session, session: RecordingSession) -> Recording:
        existing = s.get(Recording, session.recording_id)
        if existing is not None:
            return existing
        meeting_id = session.base_data.get("meetingId")
        if meeting_id is not None and s.get(Meeting, meeting_id) is None:
            meeting_id = None  # a room without an API meeting: no row to point at
        destination = session.destination.to_dict(reveal=True)
        if self.default_destination is not None and session.destination == self.default_destination:
            destination[FOLLOWS_DEFAULT] = True
        return self.recordings.create(
            s,
            recording_id=session.recording_id,
            room_name=session.room_name.lstrip("/"),
            filename=session.file_name or "",
            destination=destination,
            meeting_id=meeting_id,
            room_session_id=session.base_data.get("roomSessionId"),
            file_format=session.destination.file_format,
            spool_path=str(session.spool_path) if session.spool_path else None,
            # A queued recording's spool is on the worker that took it (its node).
            node=getattr(session, "node", None) or self.node,
            start_date=session.started_at,
        )

    # --- from the uploaders ---------------------------------------------------------

    def stored(self, recording_id: str, stored: StoredObject, now: datetime | None = None) -> bool:
        """A kept recording was stored by an uploader: the row becomes ``stored`` and
        ``recording.finished`` goes to the outbox, together. ``False`` if unknown."""
        with self.db.session() as s:
            row = s.get(Recording, recording_id)
            if row is None:
                return False
            if row.status == "stored":
                return True  # told twice (e.g. a report that waited): one recording.finished
            self.recordings.update(
                s,
                row,
                status="stored",
                location=stored.location,
                size_bytes=stored.size,
                reason=None,
                next_attempt_at=None,
            )
            if row.end_date is None:
                row.end_date = now or utcnow()
            Outbox.add(s, Event(RECORDING_FINISHED, recording_data(row, "completed")).to_dict())
        self._notify()
        return True

    def failed(self, recording_id: str, reason: str, *, removed: bool = False) -> None:
        """A kept recording failed for good (e.g. empty: removed): the row becomes
        ``failed`` and ``recording.failed`` goes to the outbox, together."""
        with self.db.session() as s:
            row = s.get(Recording, recording_id)
            if row is None:
                return
            self.recordings.update(
                s,
                row,
                status="failed",
                reason=reason,
                next_attempt_at=None,
                spool_path=None if removed else row.spool_path,
            )
            if row.end_date is None:
                row.end_date = utcnow()
            Outbox.add(s, Event(RECORDING_FAILED, recording_data(row, "failed")).to_dict())
        self._notify()

    def retry_later(
        self,
        recording_id: str,
        when: datetime,
        reason: str,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        """Storing a kept recording failed for now: ``kept``, next attempt at ``when``."""
        with self.db.session() as s:
            row = s.get(Recording, recording_id)
            if row is None or row.status == "stored":
                return
            self.recordings.update(
                s, row, status="kept", reason=reason, next_attempt_at=when, **dict(fields or {})
            )


__all__ = ["ControlEvents", "FIRST_RETRY", "FOLLOWS_DEFAULT", "recording_data", "this_node"]
