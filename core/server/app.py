"""The room server: an aiohttp application on the same event loop as aiortc.

Routes:

* ``GET /<room>`` — the room page (``?roomKey=…`` makes you a host, ``?embed=1``
  for an iframe, ``?name=…`` your display name);
* ``GET /<room>/ws`` — the room's signalling WebSocket (JSON messages, see
  docs/rooms.md; the protocol is :mod:`recfw.server.protocol`);
* ``GET /static/…`` — the page's scripts and styles, and ``embed-example.html``;
* ``/v1/meetings``, ``/v1/recordings``, ``/v1/openapi.json`` — the REST API
  (:mod:`recfw.api`; ``Authorization: Bearer <key>``: a ``recfw keys create`` key,
  or the bootstrap ``[server] apiKey`` / ``RECFW_API_KEY``; checked by
  :mod:`recfw.control.auth`), and ``/downloads/…``, its signed download links.

Meetings live in the database: a meeting's room is opened on its first join
with the meeting's own settings and mode, closed at its ``endDate`` by the
:class:`~recfw.server.meetings.MeetingClock`.

This module is the wiring: the routes, the rooms and meetings the server holds,
host keys, and starting and stopping. The WebSocket protocol is
:mod:`recfw.server.protocol`, HTTP logging :mod:`recfw.server.httplog`.
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
import shutil
import tempfile
import threading
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ..control.auth import ApiAuth
from ..settings import effective
from .httplog import runner_options
from .ice import is_loopback_only, restrict_host_addresses
from .meetings import MeetingClock, MeetingRoom, lookup_room
from .protocol import Connection, hang_up
from .room import Room

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..api import Api
    from ..config import Config
    from ..control import Database
    from ..control.events import ControlEvents
    from ..manager import Plugins
    from ..queue.redisq import JobQueue
    from ..session import RecordingSession

log = logging.getLogger(__name__)

#: Room names: a meeting's is up to 39 (prefix) + 36 (uuid) characters.
ROOM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
#: Rooms that have recorded, kept after they closed for reporting: at most this many
#: whose recordings are all finished (a long-running server's memory stays bounded).
CLOSED_ROOMS_KEPT = 32
HOST_SECRET_ENV = "RECFW_HOST_SECRET"
#: What people are told when ``recfw run`` stops (Ctrl-C, SIGTERM).
SHUTTING_DOWN = "the server is shutting down"


def web_dir() -> Path:
    """The folder of the page's static files (``recfw/web``)."""
    return Path(str(resources.files("recfw") / "web"))


class RoomServer:
    """Serves rooms; one :class:`Room` (and ``RoomEngine``) per room name in use.

    ``on_session_done(room, session)`` is called when a recording has been
    stored (``session.stored``) or has failed (``session.error``, ``kept_at``).
    ``access_log`` logs one line per request (see :mod:`recfw.server.httplog`).

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
        access_log: bool = False,
        clock: Callable[[], datetime] | None = None,
        control: ControlEvents | None = None,
        supervise: bool = False,
    ):
        self.config = config
        #: Record in ``recfw worker`` processes (one per recording) instead of in this one.
        self.supervise = supervise
        self.access_log = access_log
        #: The control plane's database (``None``: only the bootstrap API key works, and
        #: meetings go to a temporary database that lasts as long as this server).
        self.db = db
        self._temp_db: Database | None = None
        self._temp_dir: str | None = None
        self._temp_lock = threading.Lock()
        #: The time (tests move it): meetings end by it.
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        #: Guards every /v1 route (see recfw.control.auth); handlers never check keys.
        self.auth = ApiAuth(db, config.server.api_key, rate_limit=config.server.api_rate_limit)
        #: Where every room's events go first (recordings rows + webhook outbox).
        self.control = control
        self.on_session_done = on_session_done
        self.plugins = plugins
        self.settings = effective(config.recording, None, plugins)
        #: The organization's recording defaults, as meetings' overrides are laid over them.
        self.defaults = config.recording
        self.spool_dir = spool_dir
        self._host_secret = (
            host_secret or os.environ.get(HOST_SECRET_ENV) or secrets.token_urlsafe(24)
        )
        self.ice_addresses = tuple(config.server.ice_addresses)
        self.loopback_only = is_loopback_only(self.ice_addresses)
        self.rooms: dict[str, Room] = {}
        self.closed_rooms: list[Room] = []
        #: The meetings of the rooms being opened or open now (by room name).
        self._meeting_rooms: dict[str, MeetingRoom] = {}
        from ..api.links import link_key

        #: The key of the REST API's signed download links (from the host secret).
        self.link_key = link_key(self._host_secret)
        self.meeting_clock = MeetingClock(self._meetings_db, self.end_room, self.clock)
        self._room_sockets: dict[str, set[web.WebSocketResponse]] = {}
        self.base_url: str | None = None
        #: The Redis job queue (``[workers] queue``): recordings go to queue workers.
        self.job_queue: JobQueue | None = None
        if supervise and config.workers.queue is not None:
            from ..queue.redisq import JobQueue

            self.job_queue = JobQueue(config.workers.queue)
        self._runner: web.AppRunner | None = None
        #: Every open WebSocket and its connection (people's and recorder processes').
        self._sockets: dict[web.WebSocketResponse, Connection] = {}
        #: Rooms being closed (a meeting ended, or the server stops): no longer in
        #: :attr:`rooms`, but a recorder still starting for one may join it.
        self._closing: set[Room] = set()
        #: :meth:`close` began: people's joins are refused.
        self._shutting_down = False
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

    def public_base(self) -> str:
        """The base URL others reach this server at (``[server] publicUrl`` or where it listens)."""
        return (self.config.server.public_url or self.base_url or "").rstrip("/")

    # --- the control plane's database ------------------------------------------

    def control_db(self) -> Database:
        """The database meetings are kept in: the configured one, else a temporary one
        (made on first use, removed by :meth:`close`). Blocking on first use."""
        if self.db is not None:
            return self.db
        with self._temp_lock:  # two first requests at once make one database
            return self._make_temp_db()

    def _make_temp_db(self) -> Database:
        if self._temp_db is None:
            from ..control.crypto import Cipher, new_key
            from ..control.db import Database

            self._temp_dir = tempfile.mkdtemp(prefix="recfw-meetings-")
            db = Database(
                f"sqlite:///{self._temp_dir}/recfw.db",
                Cipher([new_key().encode()], "temporary key"),
                source="temporary",
            )
            db.upgrade()
            log.info("no database given: meetings are kept only while this server runs")
            self._temp_db = db
        return self._temp_db

    def _meetings_db(self) -> Database | None:
        """The database if there may be meetings in it (the temporary one only once made)."""
        return self.db if self.db is not None else self._temp_db

    def room_in_use(self, name: str) -> bool:
        return name in self.rooms

    # --- the app --------------------------------------------------------------

    def _make_app(self) -> web.Application:
        from ..api import Api

        app = web.Application(middlewares=[self.auth.middleware])
        app.router.add_get("/", self._index)
        app.router.add_get("/favicon.ico", self._no_content)
        app.router.add_static("/static/", web_dir(), show_index=False)
        self.api: Api = Api(self)
        self.api.register(app)
        from ..dashboard import Dashboard  # /dashboard (docs/dashboard.md), before /{room}

        self.dashboard = Dashboard(self)
        self.dashboard.register(app)
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
        connection = Connection(ws, name, self)
        self._sockets[ws] = connection
        self._room_sockets.setdefault(name, set()).add(ws)
        try:
            await connection.run()
        finally:
            self._sockets.pop(ws, None)
            sockets = self._room_sockets.get(name)
            if sockets is not None:
                sockets.discard(ws)
                if not sockets:
                    del self._room_sockets[name]
        return ws

    def room(self, name: str) -> Room:
        """The room ``name``, made if needed: a meeting's (looked up by
        :meth:`closed_meeting` just before) with its own settings, id and mode."""
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
                mode=meeting.room_mode if meeting else "normal",
                base_url=self._worker_base_url if self.supervise else None,
                queue=self.job_queue,
            )
            room.engine.control = self.control
            self.rooms[name] = room
        return room

    def _worker_base_url(self) -> str | None:
        """Where a recorder process reaches this server: where it listens (loopback if
        it listens on every address); a queue worker (any machine) uses ``publicUrl``."""
        if self.job_queue is not None and self.config.server.public_url:
            return self.config.server.public_url.rstrip("/")
        if self.base_url is None:
            return None
        return self.base_url.replace("://0.0.0.0:", "://127.0.0.1:").replace(
            "://[::]:", "://[::1]:"
        )

    def recorder_room(self, name: str, token: object) -> Room | None:
        """The room ``name`` if ``token`` is one of its recorder tokens (used up): an
        open room, or one being closed (its recording, started just before, is stopped
        once its recorder records, and stored)."""
        open_room = self.rooms.get(name)
        rooms = [open_room] if open_room is not None else []
        rooms += [room for room in self._closing if room.name == name]
        for room in rooms:
            if room.claim_recorder_token(token):
                return room
        return None

    async def closed_meeting(self, name: str) -> str | None:
        """Why nobody may join room ``name`` (a deleted or ended meeting's), else ``None``.

        A meeting's room not open yet is looked up in the database (so a restarted
        server knows every meeting) and remembered for :meth:`room`.
        """
        if self._shutting_down:
            return SHUTTING_DOWN
        meeting = self._meeting_rooms.get(name)
        if meeting is not None:
            return "this meeting has ended" if meeting.end_date <= self.clock() else None
        if name in self.rooms:
            return None  # a room no meeting owns, open already
        db = self._meetings_db()
        if db is None:
            return None
        meeting, refusal = await asyncio.to_thread(
            lookup_room, db, name, self.clock(), self.defaults, self.plugins
        )
        if meeting is not None:
            self._meeting_rooms[name] = meeting
        return refusal

    # --- ending rooms ------------------------------------------------------------

    async def end_room(self, name: str, message: str) -> None:
        """Close room ``name`` (a deleted or ended meeting's): everyone in it is told
        ``message`` and disconnected, its recording (if any) is stopped and stored
        before this returns.

        People go first; the recorder process stays connected until its recording is
        stopped and finished (one still starting joins the closing room, records and is
        stopped at once), so a recording never fails because its room closed."""
        self._meeting_rooms.pop(name, None)
        room = self.rooms.pop(name, None)
        await self._hang_up(message, lambda c: c.name == name and not c.recorder)
        if room is not None:
            self._closing.add(room)
            try:
                await room.close()
            finally:
                self._closing.discard(room)
            self._keep_closed(room)
            log.info("room %r closed: %s", name, message)
        await self._hang_up(message, lambda c: c.name == name)

    async def _hang_up(self, message: str, which: Callable[[Connection], bool]) -> None:
        """Tell the connections ``which`` picks ``message`` and close them."""
        sockets = [ws for ws, connection in list(self._sockets.items()) if which(connection)]
        await asyncio.gather(*(hang_up(ws, message) for ws in sockets))

    def _keep_closed(self, room: Room) -> None:
        """Remember a room that recorded (``recfw run`` reports where files went); drop
        the oldest whose recordings are all finished beyond :data:`CLOSED_ROOMS_KEPT`."""
        if room.engine.sessions and room not in self.closed_rooms:
            self.closed_rooms.append(room)
        finished = [r for r in self.closed_rooms if _finished(r)]
        for old in finished[: max(0, len(finished) - CLOSED_ROOMS_KEPT)]:
            self.closed_rooms.remove(old)

    async def retire(self, room: Room) -> None:
        """The last person left: the room's recording (if any) is stored; the room goes.

        A recording still starting keeps the room open until it has started (or failed
        to): its recorder process joins it, and is stopped at once, or someone who comes
        back meanwhile finds the same room, whose recording goes on."""
        if not room.empty:  # someone joined again while the last one was leaving
            return
        await room.engine.wait_started()
        if not room.empty:  # the recorder (or someone) joined: retired when they leave
            return
        if self.rooms.get(room.name) is room:
            del self.rooms[room.name]
            self._meeting_rooms.pop(room.name, None)
        # Kept for reporting (recfw run prints where files went); rooms that never
        # recorded are dropped. The last two may leave at the same moment: once only.
        self._keep_closed(room)
        await room.engine.wait_stored()
        self._keep_closed(room)  # prune again now that it is finished

    # --- running --------------------------------------------------------------

    async def start(self, host: str | None = None, port: int | None = None) -> str:
        """Listen (``port`` 0: any free port); return the base URL."""
        restrict_host_addresses(self.ice_addresses)
        host = host or self.config.server.host
        port = self.config.server.port if port is None else port
        self._runner = web.AppRunner(self.app, **runner_options(self.access_log))
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
            log.info("REST API at %s/v1 (described at /v1/openapi.json)", self.base_url)
        self.meeting_clock.start()
        return self.base_url

    async def wait_idle(self) -> None:
        """Wait until every room's recordings are stored."""
        for room in list(self.rooms.values()) + self.closed_rooms:
            await room.engine.wait_stored()

    async def close(self) -> None:
        """Stop: disconnect everyone, stop recordings and wait until they are stored.

        The order matters for a recording still starting (its recorder process is
        joining, which takes seconds): people are told and disconnected first (no one
        joins any more); then every room is closed, which stops its recording (one
        still starting once it records: its recorder may still join) and waits until
        it is stored; only then are the remaining connections (recorders) closed."""
        self._shutting_down = True
        await self.meeting_clock.stop()
        await self.api.idle()
        await self._hang_up(SHUTTING_DOWN, lambda c: c.person)
        closing: list[Room] = []
        try:
            while self.rooms:  # (a join that was under way may have opened one more)
                rooms = list(self.rooms.values())
                self.rooms.clear()
                self._closing.update(rooms)
                closing += rooms
                results = await asyncio.gather(
                    *(room.close() for room in rooms), return_exceptions=True
                )
                for room, result in zip(rooms, results, strict=True):
                    if isinstance(result, Exception):
                        log.error("room %r: closing it failed: %r", room.name, result)
                    if room.engine.sessions and room not in self.closed_rooms:
                        self.closed_rooms.append(room)
            await self.wait_idle()
        finally:
            self._closing.difference_update(closing)
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        if self.job_queue is not None:
            with contextlib.suppress(Exception):
                await self.job_queue.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._temp_db is not None:
            self._temp_db.dispose()
            self._temp_db = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None


def _finished(room: Room) -> bool:
    """Every recording of ``room`` is stored or failed (nothing left to wait for)."""
    return all(s.status in ("stored", "failed") for s in room.engine.sessions)
