"""Recordings: the list (filter, paging, live status), download, delete and retry.

Download and delete go through the REST API's own service code
(:class:`recfw.api.recordings.RecordingsApi`: the sink's access link, and
removal from the customer's storage before the row is marked deleted); a retry
hands the recording back to the background uploader
(:meth:`recfw.control.events.ControlEvents.retry_later`, due now).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select

from ..control.models import RECORDING_STATUSES, Recording
from ..control.pagination import Page
from ..control.query import paginate
from ..errors import SettingsError
from ..times import iso_utc

if TYPE_CHECKING:
    from .app import Frame
    from .sessions import Login

PAGE_SIZE = 20
LIVE = ("recording", "uploading")
#: Seconds an access link from the dashboard stays valid.
LINK_SECONDS = 300


def human_size(size: int | None) -> str:
    if size is None:
        return "—"
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return ""


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def row_view(row: Recording) -> dict[str, Any]:
    if row.status == "stored":
        where = row.location or ""
    elif row.status in ("kept", "failed"):
        where = (f"kept at {row.spool_path}" if row.spool_path else "no local copy") + (
            f" — {row.reason}" if row.reason else ""
        )
    else:
        where = "on this server" if row.status == "recording" else "being stored"
    retry = row.status in ("kept", "failed") and bool(
        row.spool_path and Path(row.spool_path).exists()
    )
    return {
        "id": row.recording_id,
        "room": row.room_name,
        "start": iso_utc(row.start_date),
        "duration": human_duration(row.duration_s),
        "size": human_size(row.size_bytes),
        "format": row.file_format or "—",
        "status": row.status,
        "where": where,
        "download": row.status == "stored",
        "retry": retry,
        "delete": row.status in ("stored", "failed"),
        "filename": row.filename,
    }


class RecordingsPage:
    """``/dashboard/recordings``."""

    def __init__(self, frame: Frame):
        self.frame = frame
        self.server = frame.server

    def _query(self, room: str, status: str, cursor: str | None):
        stmt = select(Recording).where(Recording.deleted_at.is_(None))
        if room:
            stmt = stmt.where(Recording.room_name == room.lstrip("/"))
        if status:
            stmt = stmt.where(Recording.status == status)
        with self.server.control_db().session(readonly=True) as s:
            page: Page[Recording] = paginate(
                s,
                stmt,
                Recording.start_date,
                Recording.recording_id,
                descending=True,
                cursor=cursor,
                limit=PAGE_SIZE,
            )
            return [row_view(r) for r in page.items], page.next_cursor

    async def _context(self, request: web.Request) -> dict[str, Any]:
        room = request.query.get("room", "").strip()
        status = request.query.get("status", "").strip()
        if status not in RECORDING_STATUSES:
            status = ""
        cursor = request.query.get("cursor") or None
        error = ""
        try:
            rows, next_cursor = await asyncio.to_thread(self._query, room, status, cursor)
        except SettingsError:
            rows, next_cursor = [], None
            error = "That page link is out of date: start again from the first page."
        filters = {k: v for k, v in (("room", room), ("status", status)) if v}
        return {
            "rows": rows,
            "room": room,
            "status": status,
            "statuses": RECORDING_STATUSES,
            "filters": filters,
            "next_url": ("?" + urlencode(filters | {"cursor": next_cursor})) if next_cursor else "",
            "first_url": ("?" + urlencode(filters)) if cursor else "",
            "live": any(r["status"] in LIVE for r in rows),
            "rows_url": "rows?" + urlencode(filters | ({"cursor": cursor} if cursor else {})),
            "error": error,
            "notice": request.query.get("notice", ""),
            "problem": request.query.get("problem", ""),
        }

    async def get(self, request: web.Request, login: Login) -> web.StreamResponse:
        return self.frame.render(request, "recordings.html", login, **await self._context(request))

    async def rows(self, request: web.Request, login: Login) -> web.StreamResponse:
        """The table's rows alone (the page's script swaps them in while a recording is live)."""
        return self.frame.render(
            request, "recording_rows.html", login, **await self._context(request)
        )

    async def download(self, request: web.Request, login: Login) -> web.StreamResponse:
        from ..api.recordings import Refused

        api = self.server.api.recordings
        row = await asyncio.to_thread(api._row, request.match_info["id"])
        if row is None:
            return self._back("problem", "That recording does not exist (any more).")
        try:
            link = await api.make_access_link(row, LINK_SECONDS)
        except Refused as exc:
            return self._back("problem", f"Cannot download it: {exc.message}")
        raise web.HTTPSeeOther(link)

    async def delete(self, request: web.Request, login: Login) -> web.StreamResponse:
        from ..api.recordings import Refused

        try:
            done = await self.server.api.recordings.remove(request.match_info["id"])
        except Refused as exc:
            return self._back("problem", f"Not deleted: {exc.message}")
        return self._back(
            "notice",
            "Recording deleted from storage." if done else "It was already deleted.",
        )

    async def retry(self, request: web.Request, login: Login) -> web.StreamResponse:
        control = getattr(self.server, "control", None)
        if control is None:
            return self._back(
                "problem",
                "The background uploader is not running in this server: run "
                "`recfw spool upload` instead.",
            )
        recording_id = request.match_info["id"]
        row = await asyncio.to_thread(self.server.api.recordings._row, recording_id)
        if row is None or row.status not in ("kept", "failed"):
            return self._back("problem", "Only a kept or failed recording can be retried.")
        if not (row.spool_path and Path(row.spool_path).exists()):
            return self._back("problem", "Its local copy is gone: there is nothing to upload.")
        await asyncio.to_thread(
            control.retry_later,
            recording_id,
            self.server.clock(),
            "upload retried from the dashboard",
        )
        return self._back("notice", "Upload queued: the background uploader takes it shortly.")

    def _back(self, kind: str, message: str) -> web.StreamResponse:
        raise web.HTTPSeeOther(f"/dashboard/recordings?{urlencode({kind: message})}")


__all__ = ["RecordingsPage", "human_duration", "human_size"]
