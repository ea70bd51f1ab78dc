"""``/v1/meetings``: create, list, get and delete meetings (Whereby's paths and shapes).

A meeting is a row in the control plane's database, so a restarted server
knows every meeting; its room is opened on the first join
(:func:`recfw.server.meetings.lookup_room`). DELETE is idempotent (204 again,
and for an id never seen), and stops and stores a running recording of the
meeting's room before it answers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..control import MeetingStore, RoomNameTaken
from ..errors import SettingsError
from ..server.meetings import (
    MeetingRequest,
    new_room_name,
    parse_body,
    parse_fields,
    parse_meeting_request,
    shown_settings,
)
from ..times import iso_utc
from .query import limit_param
from .responses import error, invalid, no_content, ok

if TYPE_CHECKING:
    from ..control.models import Meeting
    from .plane import RoomPlane

log = logging.getLogger(__name__)

#: Tries to find a room name nobody has used (a clash is all but impossible).
NAME_TRIES = 8


class MeetingsApi:
    """The handlers of ``/v1/meetings`` on a room server (:class:`~recfw.api.routes.RoomPlane`)."""

    def __init__(self, plane: RoomPlane):
        self.plane = plane
        self.store = MeetingStore()

    def describe(self, row: Meeting, fields: tuple[str, ...] = ()) -> dict[str, Any]:
        """Whereby's ``Meeting`` (``hostRoomUrl`` only when asked for through ``fields``),
        plus recfw's ``roomMode``, ``isLocked`` and effective ``recording`` (secrets masked)."""
        visitor, host = self.plane.links(row.room_name)
        out: dict[str, Any] = {
            "meetingId": row.meeting_id,
            "roomName": f"/{row.room_name}",
            "roomUrl": visitor,
            "startDate": iso_utc(row.start_date),
            "endDate": iso_utc(row.end_date),
        }
        if "hostRoomUrl" in fields:
            out["hostRoomUrl"] = host
        out["roomMode"] = row.room_mode or "normal"
        out["isLocked"] = bool(row.is_locked)
        out["recording"] = shown_settings(self.plane.defaults, row.recording_revealed())
        return out

    # --- POST /v1/meetings ----------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        now = self.plane.clock()
        try:
            body = parse_body(await request.read())
            wanted = await asyncio.to_thread(
                parse_meeting_request, body, self.plane.defaults, self.plane.plugins, now
            )
        except SettingsError as exc:
            return invalid(exc.errors)
        row = await asyncio.to_thread(self.create_meeting, wanted, now)
        log.info(
            "meeting %s created: room %r (%s), ends %s",
            row.meeting_id,
            row.room_name,
            row.room_mode,
            iso_utc(row.end_date),
        )
        return ok(self.describe(row, wanted.fields), status=201)

    def create_meeting(self, wanted: MeetingRequest, now) -> Meeting:
        """Store a new meeting under a free room name (the API and the dashboard call this)."""
        db = self.plane.control_db()
        for _ in range(NAME_TRIES):
            name = new_room_name(wanted.room_name_prefix, wanted.room_name_pattern)
            if self.plane.room_in_use(name):
                continue
            try:
                with db.session() as s:
                    row = self.store.create(
                        s,
                        room_name=name,
                        end_date=wanted.end_date,
                        start_date=now,
                        room_url=self.plane.links(name)[0],
                        room_name_prefix=wanted.room_name_prefix,
                        room_name_pattern=wanted.room_name_pattern,
                        room_mode=wanted.room_mode,
                        is_locked=wanted.is_locked,
                        fields=wanted.fields,
                        template_type=wanted.template_type,
                        recording=wanted.recording,
                    )
                    row.options_secret = dict(wanted.options)
                return row
            except RoomNameTaken:
                continue
        raise RuntimeError("no free room name found")  # 2**122 names: never happens

    # --- GET /v1/meetings -------------------------------------------------------------

    async def list(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            limit = limit_param(query)
            fields = parse_fields(query.get("fields"))
            page = await asyncio.to_thread(self._list, query.get("cursor") or None, limit)
        except SettingsError as exc:
            return invalid(exc.errors)
        return ok(
            {
                "results": [self.describe(m, fields) for m in page.items],
                "cursor": page.next_cursor,
            }
        )

    def _list(self, cursor: str | None, limit: int):
        with self.plane.control_db().session(readonly=True) as s:
            return self.store.list(s, cursor=cursor, limit=limit)

    # --- GET /v1/meetings/{meetingId} ---------------------------------------------------

    async def get(self, request: web.Request) -> web.Response:
        try:
            fields = parse_fields(request.query.get("fields"))
        except SettingsError as exc:
            return invalid(exc.errors)
        row = await asyncio.to_thread(self._get, request.match_info["meetingId"])
        if row is None:
            return error(404, "no such meeting")
        return ok(self.describe(row, fields))

    def _get(self, meeting_id: str, deleted: bool = False) -> Meeting | None:
        with self.plane.control_db().session(readonly=True) as s:
            return self.store.get(s, meeting_id, deleted=deleted)

    # --- DELETE /v1/meetings/{meetingId} ---------------------------------------------

    async def delete(self, request: web.Request) -> web.Response:
        meeting_id = request.match_info["meetingId"]
        name = await asyncio.to_thread(self.delete_meeting, meeting_id)
        if name is not None:
            # Nobody may join any more (the row says deleted); whoever is in the room is
            # told and disconnected; a running recording is stopped and stored first.
            await self.plane.end_room(name, "this meeting has been deleted")
            log.info("meeting %s deleted (room %r)", meeting_id, name)
        return no_content()

    def delete_meeting(self, meeting_id: str) -> str | None:
        """The room name of a meeting deleted just now (``None``: unknown or deleted before)."""
        with self.plane.control_db().session() as s:
            row = self.store.get(s, meeting_id)
            if row is None:
                return None
            self.store.delete(s, meeting_id, self.plane.clock())
            return row.room_name


__all__ = ["MeetingsApi"]
