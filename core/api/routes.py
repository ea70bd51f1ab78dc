"""The REST API's routes on the room server's aiohttp application.

Every ``/v1`` route is guarded by one middleware (:mod:`recfw.control.auth`:
API keys, 401, 429); ``/v1/openapi.json`` and the signed ``/downloads/...``
links are open. Handlers never check keys themselves.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .links import DOWNLOAD_PREFIX
from .meetings import MeetingsApi
from .openapi import document
from .plane import RoomPlane
from .recordings import RecordingsApi


class Api:
    """The meetings and recordings API (Whereby-compatible) and its OpenAPI document."""

    def __init__(self, plane: RoomPlane):
        self.meetings = MeetingsApi(plane)
        self.recordings = RecordingsApi(plane)
        self._document: dict[str, Any] | None = None

    def register(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/v1/openapi.json", self.openapi)
        r.add_post("/v1/meetings", self.meetings.create)
        r.add_get("/v1/meetings", self.meetings.list)
        r.add_get("/v1/meetings/{meetingId}", self.meetings.get)
        r.add_delete("/v1/meetings/{meetingId}", self.meetings.delete)
        r.add_get("/v1/recordings", self.recordings.list)
        r.add_post("/v1/recordings/bulk-delete", self.recordings.bulk_delete)
        r.add_get("/v1/recordings/{recordingId}", self.recordings.get)
        r.add_delete("/v1/recordings/{recordingId}", self.recordings.delete)
        r.add_get("/v1/recordings/{recordingId}/access-link", self.recordings.access_link)
        r.add_get(DOWNLOAD_PREFIX + "/{recordingId}/{filename}", self.recordings.download)

    async def openapi(self, request: web.Request) -> web.Response:
        if self._document is None:
            self._document = document()
        return web.json_response(self._document)

    async def idle(self) -> None:
        """Wait for background work (bulk deletions) to finish."""
        await self.recordings.idle()


__all__ = ["Api", "RoomPlane"]
