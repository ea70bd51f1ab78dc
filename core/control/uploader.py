"""The background uploader: kept recordings go to *their own* destination, by themselves.

A recording whose upload failed (storage down, bad credentials) is ``kept`` in
the spool with its row saying why. :class:`BackgroundUploader` (run by
``recfw run``) retries each kept recording of this machine with exponential
backoff, to the destination written in its row when it started (credentials
decrypted only for the sink), never the organization default. When stored, the
row becomes ``stored`` and ``recording.finished`` goes to the outbox in the same
transaction.

At start (and every round) it also recovers recordings a killed process left
behind: a row still ``recording`` whose session is not alive (its spool file is
not locked) becomes ``kept`` (the file holds what was recorded up to the kill)
or, when the file is empty or gone, ``failed``.

The spool's per-file lock (:class:`recfw.spool.SpoolLock`) keeps this uploader,
``recfw spool upload`` and running recordings from touching one file at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..errors import SettingsError
from ..settings import Destination, parse_recording
from ..spool import SpoolFileBusy, SpoolFileGone, SpoolLock, UploadResult, upload_file
from .events import FOLLOWS_DEFAULT, ControlEvents
from .models import Recording, utcnow
from .recordings import RecordingStore

if TYPE_CHECKING:
    from ..manager import Plugins
    from .db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadPolicy:
    """How often kept recordings are retried."""

    backoff: timedelta = timedelta(seconds=30)
    backoff_max: timedelta = timedelta(hours=1)
    #: A claimed upload whose uploader died is taken again after this long.
    lease: timedelta = timedelta(minutes=30)
    #: Seconds between two rounds when nothing is due.
    interval: float = 10.0

    def delay(self, attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
        base = self.backoff.total_seconds() * 2 ** max(attempts - 1, 0)
        capped = min(base, self.backoff_max.total_seconds())
        return timedelta(seconds=capped * (0.5 + 0.5 * rng()))


def row_destination(row: Recording, default: Destination | None = None) -> Destination:
    """The recording's own destination (with its credentials), as a sink takes it.

    A recording made with the organization default (not a meeting's own
    destination) follows the current ``default`` when one is given, so an
    operator's fixed credentials apply; a meeting's own destination never
    changes.
    """
    revealed = row.destination_revealed()
    if not revealed:
        raise SettingsError([])
    revealed = dict(revealed)
    if revealed.pop(FOLLOWS_DEFAULT, False) and default is not None:
        return default
    given = parse_recording({"destination": revealed}, "destination").destination
    if given is None or not given.provider:
        raise SettingsError([])
    return Destination(
        provider=given.provider,
        bucket=given.bucket or "",
        access_key_id=given.access_key_id,
        access_key_secret=given.access_key_secret,
        file_format=given.file_format or "",
        region=given.region,
        endpoint_url=given.endpoint_url,
    )


class BackgroundUploader:
    """Retries this machine's kept recordings. ``clock`` and ``rng`` are injectable."""

    def __init__(
        self,
        db: Database,
        plugins: Plugins,
        events: ControlEvents,
        policy: UploadPolicy | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: Callable[[], float] = random.random,
    ):
        self.db = db
        self.plugins = plugins
        self.events = events
        self.policy = policy or UploadPolicy()
        self.clock = clock
        self.rng = rng
        self.store = RecordingStore()

    # --- recovering what a killed process left ------------------------------------------

    def recover(self) -> int:
        """Rows of this node still ``recording`` with no live session: ``kept`` (or
        ``failed`` if their file is empty or gone). Returns how many were recovered."""
        with self.db.session(readonly=True) as s:
            rows = list(
                s.scalars(
                    select(Recording).where(
                        Recording.status == "recording",
                        Recording.node == self.events.node,
                        Recording.deleted_at.is_(None),
                    )
                )
            )
            candidates = [(r.recording_id, r.spool_path) for r in rows]
        recovered = 0
        for recording_id, spool_path in candidates:
            if self.events.is_live(recording_id):
                continue
            path = Path(spool_path) if spool_path else None
            if path is None or not path.exists():
                self._mark_gone(recording_id)
                recovered += 1
                continue
            try:
                with SpoolLock(path):
                    stat = os.stat(path)
            except SpoolFileBusy:
                continue  # another process is recording it right now
            except SpoolFileGone:
                self._mark_gone(recording_id)
                recovered += 1
                continue
            ended = datetime.fromtimestamp(stat.st_mtime, UTC)
            with self.db.session() as s:
                row = s.get(Recording, recording_id)
                if row is None or row.status != "recording":
                    continue
                self.store.update(
                    s,
                    row,
                    status="kept",
                    reason="recfw stopped while recording: the file holds what was recorded "
                    "until then",
                    size_bytes=stat.st_size,
                    end_date=ended,
                    duration_s=max((ended - row.start_date).total_seconds(), 0.0),
                    next_attempt_at=self.clock(),
                )
            log.warning(
                "recording %s (%s) was cut short by a stop of recfw; it will be stored",
                recording_id,
                path.name,
            )
            recovered += 1
        return recovered

    def _mark_gone(self, recording_id: str) -> None:
        with self.db.session(readonly=True) as s:
            row = s.get(Recording, recording_id)
            if row is None or row.status != "recording":
                return
        self.events.failed(
            recording_id,
            "recfw stopped while recording and the spool file is gone",
            removed=True,
        )

    # --- one round --------------------------------------------------------------------

    def run_once(self) -> list[tuple[str, UploadResult | None]]:
        """Recover, then try every due kept recording once. Returns ``(id, result)``
        pairs (``None``: its destination could not be read)."""
        self.recover()
        now = self.clock()
        with self.db.session() as s:
            rows: list[Recording] = self.store.claim_uploads(
                s, now, lease=self.policy.lease, node=self.events.node
            )
            claimed = [(row.recording_id, row.spool_path, row.attempts, row) for row in rows]
            work: list[tuple[str, str | None, int, Destination | None]] = []
            for recording_id, spool_path, attempts, row in claimed:
                try:
                    destination: Destination | None = row_destination(
                        row, self.events.default_destination
                    )
                except SettingsError:
                    destination = None
                work.append((recording_id, spool_path, attempts, destination))
        results: list[tuple[str, UploadResult | None]] = []
        for recording_id, spool_path, attempts, destination in work:
            results.append(
                (recording_id, self._upload(recording_id, spool_path, attempts, destination))
            )
        return results

    def _upload(
        self,
        recording_id: str,
        spool_path: str | None,
        attempts: int,
        destination: Destination | None,
    ) -> UploadResult | None:
        if destination is None:
            self.events.failed(recording_id, "the recording's destination is missing or unreadable")
            return None
        if not spool_path:
            self.events.failed(recording_id, "the recording has no spool file", removed=True)
            return None
        path = Path(spool_path)
        result = upload_file(path, destination, self.plugins, empty_grace=0.0)
        now = self.clock()
        if result.outcome == "stored" and result.stored is not None:
            self.events.stored(recording_id, result.stored, now)
            log.info("kept recording %s stored as %s", path.name, result.stored.location)
        elif result.outcome == "empty":
            self.events.failed(recording_id, result.message, removed=True)
        elif result.outcome == "gone":
            self._after_gone(recording_id, now)
        elif result.outcome == "busy":
            self.events.retry_later(recording_id, now + self.policy.backoff, result.message)
        else:
            wait = self.policy.delay(attempts, self.rng)
            self.events.retry_later(recording_id, now + wait, result.message)
            log.warning(
                "kept recording %s not stored (attempt %d): %s; next try in %.0fs",
                path.name,
                attempts,
                result.message,
                wait.total_seconds(),
            )
        return result

    def _after_gone(self, recording_id: str, now: datetime) -> None:
        """The file vanished: another uploader stored it (and marks the row), unless it
        is gone for another reason, which the next round finds out."""
        with self.db.session(readonly=True) as s:
            row = s.get(Recording, recording_id)
            status = None if row is None else row.status
            path = None if row is None else row.spool_path
        if status == "stored":
            return
        if path and not Path(path).exists() and status == "uploading":
            self.events.retry_later(
                recording_id, now + self.policy.backoff, "the spool file is being stored elsewhere"
            )

    # --- running ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:  # noqa: BLE001 - a database hiccup: try again next round
                log.exception("background upload round failed")
            try:
                await asyncio.wait_for(stop.wait(), self.policy.interval)
            except TimeoutError:
                pass


def pending_uploads(db: Database, node: str) -> list[dict[str, Any]]:
    """Kept recordings of ``node`` (for ``recfw spool list``)."""
    with db.session(readonly=True) as s:
        rows = s.scalars(
            select(Recording).where(
                Recording.status.in_(("kept", "uploading", "recording")),
                Recording.node == node,
                Recording.deleted_at.is_(None),
            )
        )
        return [
            {
                "recordingId": r.recording_id,
                "status": r.status,
                "spoolPath": r.spool_path,
                "reason": r.reason,
                "attempts": r.attempts,
                "nextAttemptAt": r.next_attempt_at,
            }
            for r in rows
        ]


__all__ = ["BackgroundUploader", "UploadPolicy", "pending_uploads", "row_destination"]
