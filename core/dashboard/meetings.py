"""Meetings: create (end date, room name prefix, room mode, recording override), list with
the visitor and host links, delete.

Creation and deletion are the REST API's own (:mod:`recfw.api.meetings`,
:func:`recfw.server.meetings.parse_meeting_request`): the form is turned into
the same JSON body ``POST /v1/meetings`` takes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from ..errors import FieldError, SettingsError
from ..server.meetings import ROOM_MODES, parse_meeting_request
from ..times import iso_utc
from .configure import trigger_choices

if TYPE_CHECKING:
    from .app import Frame
    from .sessions import Login

PAGE_SIZE = 25


def form_body(form: Any) -> dict[str, Any]:
    """The ``POST /v1/meetings`` body of the dashboard's form (times in UTC)."""
    errors: list[FieldError] = []
    body: dict[str, Any] = {"fields": ["hostRoomUrl"]}
    end = str(form.get("endDate", "")).strip()
    if not end:
        errors.append(FieldError("endDate", "is required: when the meeting ends (UTC)"))
    else:
        try:
            when = datetime.fromisoformat(end)
        except ValueError:
            errors.append(FieldError("endDate", f"{end!r} is not a date and time"))
        else:
            when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
            body["endDate"] = iso_utc(when)
    for key in ("roomNamePrefix", "roomMode"):
        value = str(form.get(key, "")).strip()
        if value:
            body[key] = value
    recording: dict[str, Any] = {}
    trigger = str(form.get("startTrigger", "")).strip()
    if trigger:
        recording["startTrigger"] = trigger
    file_format = str(form.get("fileFormat", "")).strip()
    if file_format:
        recording["destination"] = {"fileFormat": file_format}
    if recording:
        body["recording"] = recording
    if errors:
        raise SettingsError(errors)
    return body


class MeetingsPage:
    """``/dashboard/meetings``."""

    def __init__(self, frame: Frame):
        self.frame = frame
        self.server = frame.server

    def _list(self, cursor: str | None):
        api = self.server.api.meetings
        with self.server.control_db().session(readonly=True) as s:
            page = api.store.list(s, cursor=cursor, limit=PAGE_SIZE, descending=True)
            rows = []
            for m in page.items:
                visitor, host = self.server.links(m.room_name)
                rows.append(
                    {
                        "id": m.meeting_id,
                        "room": m.room_name,
                        "mode": m.room_mode or "normal",
                        "end": iso_utc(m.end_date),
                        "ended": m.end_date <= self.server.clock(),
                        "visitor": visitor,
                        "host": host,
                        "trigger": (m.recording or {}).get("startTrigger"),
                    }
                )
            return rows, page.next_cursor

    async def _page(
        self, request: web.Request, login: Login, *, status: int = 200, **extra: Any
    ) -> web.Response:
        cursor = request.query.get("cursor") or None
        try:
            rows, next_cursor = await asyncio.to_thread(self._list, cursor)
        except SettingsError:
            rows, next_cursor = await asyncio.to_thread(self._list, None)
        context = {
            "rows": rows,
            "next_url": "?" + urlencode({"cursor": next_cursor}) if next_cursor else "",
            "modes": ROOM_MODES,
            "triggers": trigger_choices(self.server.plugins),
            "formats": self.server.plugins.encoder_names(),
            "errors": [],
            "values": {},
            "created": None,
            "notice": request.query.get("notice", ""),
        }
        context.update(extra)
        return self.frame.render(request, "meetings.html", login, http_status=status, **context)

    async def get(self, request: web.Request, login: Login) -> web.StreamResponse:
        return await self._page(request, login)

    async def create(self, request: web.Request, login: Login) -> web.StreamResponse:
        form = await request.post()
        values = {k: str(form.get(k, "")) for k in form if k != "csrf"}
        now = self.server.clock()
        api = self.server.api.meetings
        try:
            body = form_body(form)
            wanted = await asyncio.to_thread(
                parse_meeting_request, body, self.server.defaults, self.server.plugins, now
            )
        except SettingsError as exc:
            return await self._page(
                request, login, status=400, errors=list(exc.errors), values=values
            )
        row = await asyncio.to_thread(api.create_meeting, wanted, now)
        visitor, host = self.server.links(row.room_name)
        created = {"room": row.room_name, "visitor": visitor, "host": host}
        return await self._page(request, login, created=created)

    async def delete(self, request: web.Request, login: Login) -> web.StreamResponse:
        meeting_id = request.match_info["id"]
        api = self.server.api.meetings
        name = await asyncio.to_thread(api.delete_meeting, meeting_id)
        if name is not None:
            await self.server.end_room(name, "this meeting has been deleted")
        notice = f"Meeting {name} deleted." if name else "That meeting was already deleted."
        raise web.HTTPSeeOther("/dashboard/meetings?" + urlencode({"notice": notice}))


__all__ = ["MeetingsPage", "form_body"]
