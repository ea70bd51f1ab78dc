"""The meetings API over HTTP: ``POST /v1/meetings``, ``GET|DELETE /v1/meetings/{id}``.

The server's middleware (:mod:`recfw.control.auth`) checks every request's
``Authorization: Bearer <key>`` before a handler runs. A body's problems are a 400
listing each field; the meeting itself (its settings, its room) is made by
:mod:`recfw.server.meetings` and kept by the server (:class:`MeetingRegistry`).
See docs/rooms.md.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from ..errors import SettingsError
from .meetings import Meeting, create_meeting, parse_body

if TYPE_CHECKING:
    from ..config import Config
    from ..manager import Plugins

log = logging.getLogger(__name__)


class MeetingRegistry(Protocol):
    """What the API needs from the server (implemented by ``RoomServer``)."""

    config: Config
    plugins: Plugins
    meetings: dict[str, Meeting]

    def links(self, room: str) -> tuple[str, str]: ...

    def add_meeting(self, meeting: Meeting) -> bool: ...

    async def delete_meeting(self, meeting_id: str) -> None: ...


class MeetingsApi:
    """The ``/v1/meetings`` routes of one server."""

    def __init__(self, registry: MeetingRegistry):
        self.registry = registry

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/meetings", self._create_meeting)
        app.router.add_get("/v1/meetings/{id}", self._get_meeting)
        app.router.add_delete("/v1/meetings/{id}", self._delete_meeting)

    def _describe(self, meeting: Meeting) -> dict[str, Any]:
        visitor, host = self.registry.links(meeting.room_name)
        return meeting.to_dict(visitor, host)

    async def _create_meeting(self, request: web.Request) -> web.Response:
        try:
            body = parse_body(await request.read())
            meeting = create_meeting(body, self.registry.config.recording, self.registry.plugins)
        except SettingsError as exc:
            fields = [{"field": e.field, "message": e.message} for e in exc.errors]
            return web.json_response({"error": "invalid request", "fields": fields}, status=400)
        while not self.registry.add_meeting(meeting):  # the room name is taken: another
            meeting = create_meeting(body, self.registry.config.recording, self.registry.plugins)
        log.info(
            "meeting %s created: room %r, trigger %s, %s to %s",
            meeting.meeting_id,
            meeting.room_name,
            meeting.settings.start_trigger,
            meeting.settings.destination.file_format if meeting.settings.destination else None,
            meeting.settings.destination.provider if meeting.settings.destination else None,
        )
        return web.json_response(self._describe(meeting), status=201)

    def _meeting(self, request: web.Request) -> Meeting | web.Response:
        meeting = self.registry.meetings.get(request.match_info["id"])
        if meeting is None:
            return _json_error(404, "no such meeting")
        return meeting

    async def _get_meeting(self, request: web.Request) -> web.Response:
        meeting = self._meeting(request)
        if isinstance(meeting, web.Response):
            return meeting
        return web.json_response(self._describe(meeting))

    async def _delete_meeting(self, request: web.Request) -> web.Response:
        meeting = self._meeting(request)
        if isinstance(meeting, web.Response):
            return meeting
        await self.registry.delete_meeting(meeting.meeting_id)
        return web.Response(status=204)


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)
