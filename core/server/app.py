"""The room server: an aiohttp application on the same event loop as aiortc.

Routes:

* ``GET /<room>`` — the room page (``?roomKey=…`` makes you a host, ``?embed=1``
  for an iframe, ``?name=…`` your display name);
* ``GET /<room>/ws`` — the room's signalling WebSocket (JSON messages, see
  docs/rooms.md; the protocol is :mod:`recfw.server.protocol`);
* ``GET /static/…`` — the page's scripts and styles, and ``embed-example.html``;
* ``POST /v1/meetings``, ``GET|DELETE /v1/meetings/{id}`` — the meetings API
  (``Authorization: Bearer <key>``: a ``recfw keys create`` key, or the bootstrap
  ``[server] apiKey`` / ``RECFW_API_KEY``; checked by :mod:`recfw.control.auth`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..control.auth import ApiAuth
from ..errors import SettingsError
from ..settings import effective
from .ice import is_loopback_only, restrict_host_addresses
from .meetings import Meeting, create_meeting, parse_body
from .protocol import Connection, hang_up
from .room import Room

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..config import Config
    from ..control import Database
    from ..manager import Plugins
    from ..session import RecordingSession

log = logging.getLogger(__name__)

ROOM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
HOST_SECRET_ENV = "RECFW_HOST_SECRET"


def web_dir() -> Path:
    """The folder of the page's static files (``recfw/web``)."""
    return Path(str(resources.files("recfw") / "web"))


class RoomServer:
    """Serves rooms; one :class:`Room` (and ``RoomEngine``) per room name in use.

    ``on_session_done(room, session)`` is called when a recording has been
    stored (``session.stored``) or has failed (``session.error``, ``kept_at``).

    The host key of a room is an HMAC of its name with the server's host secret
    (``RECFW_HOST_SECRET``, or random per run), so host links need no storage.
    """

    def __init__(
        self,
        config: Config,
        plugins: Plugins,
        *,
        host_secret: str | None = None,
        spool_dir: Path | None = None,
        on_session_done: Callable[[Room, RecordingSession], None] | None = None,
        db: Database | None = None,
    ):
        self.config = config
        #: The control plane's database (``None``: only the bootstrap API key works).
        self.db = db
        #: Guards every /v1 route (see recfw.control.auth); handlers never check keys.
        self.auth = ApiAuth(db, config.server.api_key, rate_limit=config.server.api_rate_limit)
        self.on_session_done = on_session_done
        self.plugins = plugins
        self.settings = effective(config.recording, None, plugins)
        self.spool_dir = spool_dir
        self._host_secret = (
            host_secret or os.environ.get(HOST_SECRET_ENV) or secrets.token_urlsafe(24)
        )
        self.ice_addresses = tuple(config.server.ice_addresses)
        self.loopback_only = is_loopback_only(self.ice_addresses)
        self.rooms: dict[str, Room] = {}
        self.closed_rooms: list[Room] = []
        #: Meetings created through the API, by id, and the room names they own.
        self.meetings: dict[str, Meeting] = {}
        self._meeting_rooms: dict[str, Meeting] = {}
        self._deleted_rooms: set[str] = set()
        self._room_sockets: dict[str, set[web.WebSocketResponse]] = {}
        self.base_url: str | None = None
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self.app = self._make_app()

    # --- keys and links -------------------------------------------------------

    def host_key(self, room: str) -> str:
        mac = hmac.new(self._host_secret.encode(), room.encode(), hashlib.sha256)
        return mac.hexdigest()[:24]

    def is_host_key(self, room: str, key: object) -> bool:
        """Whether ``key`` is ``room``'s host key (anything not a non-empty string is not)."""
        if not isinstance(key, str) or not key:
            return False
        # compare_digest takes only ASCII str: compare bytes (lone surrogates too).
        given = key.encode("utf-8", "surrogatepass")
        return hmac.compare_digest(self.host_key(room).encode("ascii"), given)

    def links(self, room: str) -> tuple[str, str]:
        """``(visitor link, host link)`` of ``room``."""
        base = (self.config.server.public_url or self.base_url or "").rstrip("/")
        return f"{base}/{room}", f"{base}/{room}?roomKey={self.host_key(room)}"

    # --- the app --------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self.auth.middleware])
        app.router.add_get("/", self._index)
        app.router.add_get("/favicon.ico", self._no_content)
        app.router.add_static("/static/", web_dir(), show_index=False)
        app.router.add_post("/v1/meetings", self._create_meeting)
        app.router.add_get("/v1/meetings/{id}", self._get_meeting)
        app.router.add_delete("/v1/meetings/{id}", self._delete_meeting)
        app.router.add_get("/{room}/ws", self._websocket)
        app.router.add_get("/{room}", self._room_page)
        return app

    async def _no_content(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(
            text="recfw room server: open /<room name> to join a room.\n", content_type="text/plain"
        )

    async def _room_page(self, request: web.Request) -> web.StreamResponse:
        room = request.match_info["room"]
        if not ROOM_NAME.match(room):
            raise web.HTTPNotFound(text="room names are letters, digits, '-' and '_' (max 64)")
        return web.FileResponse(web_dir() / "room.html", headers={"Cache-Control": "no-store"})

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        name = request.match_info["room"]
        if not ROOM_NAME.match(name):
            raise web.HTTPNotFound()
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        self._sockets.add(ws)
        self._room_sockets.setdefault(name, set()).add(ws)
        try:
            await Connection(ws, name, self).run()
        finally:
            self._sockets.discard(ws)
            sockets = self._room_sockets.get(name)
            if sockets is not None:
                sockets.discard(ws)
                if not sockets:
                    del self._room_sockets[name]
        return ws

    def room(self, name: str) -> Room:
        """The room ``name``, made if needed: a meeting's with its own settings and id."""
        room = self.rooms.get(name)
        if room is None:
            meeting = self._meeting_rooms.get(name)
            room = Room(
                name,
                meeting.settings if meeting else self.settings,
                self.config,
                self.plugins,
                loopback_only=self.loopback_only,
                spool_dir=self.spool_dir,
                on_session_done=self.on_session_done,
                meeting_id=meeting.meeting_id if meeting else None,
                # A meeting's roomMode ("normal": 4 people, "group": [server] maxPeople).
                mode=getattr(meeting, "room_mode", None) or "normal",
            )
            self.rooms[name] = room
        return room

    def closed_meeting(self, name: str) -> str | None:
        """Why nobody may join room ``name`` (a deleted or ended meeting's), else ``None``."""
        if name in self._deleted_rooms:
            return "this meeting has been deleted"
        meeting = self._meeting_rooms.get(name)
        if meeting is not None and meeting.ended:
            return "this meeting has ended"
        return None

    # --- the meetings API -----------------------------------------------------

    def _describe(self, meeting: Meeting) -> dict[str, Any]:
        visitor, host = self.links(meeting.room_name)
        return meeting.to_dict(visitor, host)

    async def _create_meeting(self, request: web.Request) -> web.Response:
        try:
            body = parse_body(await request.read())
            meeting = create_meeting(body, self.config.recording, self.plugins)
        except SettingsError as exc:
            fields = [{"field": e.field, "message": e.message} for e in exc.errors]
            return web.json_response({"error": "invalid request", "fields": fields}, status=400)
        while meeting.room_name in self.rooms or meeting.room_name in self._meeting_rooms:
            meeting = create_meeting(body, self.config.recording, self.plugins)  # name taken
        self.meetings[meeting.meeting_id] = meeting
        self._meeting_rooms[meeting.room_name] = meeting
        self.room(meeting.room_name)
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
        meeting = self.meetings.get(request.match_info["id"])
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
        await self.delete_meeting(meeting.meeting_id)
        return web.Response(status=204)

    async def delete_meeting(self, meeting_id: str) -> None:
        """End a meeting: nobody may join its room again; everyone in it is disconnected,
        and its recording (if any) is stopped and stored before this returns."""
        meeting = self.meetings.pop(meeting_id, None)
        if meeting is None:
            return
        name = meeting.room_name
        self._meeting_rooms.pop(name, None)
        self._deleted_rooms.add(name)
        room = self.rooms.pop(name, None)
        await asyncio.gather(
            *(
                hang_up(ws, "this meeting has been deleted")
                for ws in self._room_sockets.get(name, ())
            )
        )
        if room is not None:
            await room.close()
            if room.engine.sessions and room not in self.closed_rooms:
                self.closed_rooms.append(room)
        log.info("meeting %s deleted (room %r)", meeting_id, name)

    async def retire(self, room: Room) -> None:
        """The last person left: the room's recording (if any) is stored; the room goes."""
        if not room.empty:  # someone joined again while the last one was leaving
            return
        if self.rooms.get(room.name) is room:
            del self.rooms[room.name]
        # Kept for reporting (recfw run prints where files went); rooms that never
        # recorded are dropped. The last two may leave at the same moment: once only.
        if room.engine.sessions and room not in self.closed_rooms:
            self.closed_rooms.append(room)
        await room.engine.wait_stored()

    # --- running --------------------------------------------------------------

    async def start(self, host: str | None = None, port: int | None = None) -> str:
        """Listen (``port`` 0: any free port); return the base URL."""
        restrict_host_addresses(self.ice_addresses)
        host = host or self.config.server.host
        port = self.config.server.port if port is None else port
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        actual = self._runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{actual}"
        log.info("room server listening on %s", self.base_url)
        if self.config.server.api_key is None and self.db is None:
            log.info("meetings API disabled: set RECFW_API_KEY or [server] apiKey to enable it")
        else:
            log.info("meetings API at %s/v1/meetings", self.base_url)
        return self.base_url

    async def wait_idle(self) -> None:
        """Wait until every room's recordings are stored."""
        for room in list(self.rooms.values()) + self.closed_rooms:
            await room.engine.wait_stored()

    async def close(self) -> None:
        """Close every connection, stop recordings and wait until they are stored."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        for room in list(self.rooms.values()):
            await room.close()
            if room.engine.sessions and room not in self.closed_rooms:
                self.closed_rooms.append(room)
        self.rooms.clear()
        await self.wait_idle()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)
