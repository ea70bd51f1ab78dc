"""The room WebSocket protocol: one :class:`Connection` per socket (see docs/rooms.md).

A connection reads JSON messages until the socket closes. Before ``join`` only
``join`` is accepted; the join picks the room, the role (host with the right
room key, else visitor) and the display name. After it, every message goes to
the :class:`~recfw.server.room.Room`, and the room's messages to this client are
written by a second task. Bad input gets an ``error`` message naming what was
wrong, and the connection lives on; nothing a client sends is a server error.

The connection knows the rest of the server only through :class:`RoomDirectory`
(rooms by name, host keys, meetings that ended), so the server's wiring
(:mod:`recfw.server.app`) and the protocol can be read apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import WSMsgType

from ..errors import RecfwError
from ..rooms import Role

if TYPE_CHECKING:
    from aiohttp import WSMessage, web

    from .room import Client, Room

log = logging.getLogger(__name__)


class RoomDirectory(Protocol):
    """What a connection needs from the server (implemented by ``RoomServer``)."""

    async def closed_meeting(self, name: str) -> str | None:
        """Why nobody may join room ``name`` any more, or ``None`` (a meeting's room is
        looked up in the database, and remembered for :meth:`room`)."""
        ...

    def is_host_key(self, room: str, key: object) -> bool:
        """Whether ``key`` is the host key of ``room``."""
        ...

    def room(self, name: str) -> Room:
        """The room ``name``, made if needed."""
        ...

    def recorder_room(self, name: str, token: object) -> Room | None:
        """The open room ``name`` if ``token`` is a recorder token it made (used up)."""
        ...

    async def retire(self, room: Room) -> None:
        """The room's last person left (or a join into an empty room failed)."""
        ...


class Connection:
    """One client's WebSocket to room ``name``: the protocol's states and replies.

    ``await run()`` handles messages until the socket closes, then takes the
    client out of its room (and retires the room when it is empty).
    """

    def __init__(self, ws: web.WebSocketResponse, name: str, directory: RoomDirectory):
        self.ws = ws
        self.name = name
        self.directory = directory
        self.client: Client | None = None
        self.room: Room | None = None
        #: Whether this is a recorder process's connection (set as its join arrives).
        self.recorder = False
        self._writer: asyncio.Task[None] | None = None

    @property
    def person(self) -> bool:
        """Whether a person (not a recorder) has joined a room on this connection."""
        return self.client is not None and not self.recorder

    async def run(self) -> None:
        try:
            async for msg in self.ws:
                message = await self._decode(msg)
                if message is None:
                    continue
                if self.client is None:
                    if not await self._join(message):
                        break
                else:
                    await self._handle(message)
        finally:
            await self._leave()

    async def _error(self, message: str, command: str | None = None) -> None:
        reply: dict[str, Any] = {"type": "error"}
        if command is not None:
            reply["command"] = command
        reply["message"] = message
        await self.ws.send_json(reply)

    async def _decode(self, msg: WSMessage) -> dict[str, Any] | None:
        """The message as a JSON object with a ``type``; ``None`` (after replying) if not."""
        if msg.type == WSMsgType.BINARY:
            await self._error("messages are JSON text")
            return None
        if msg.type != WSMsgType.TEXT:
            return None
        message, problem = parse_message(msg.data)
        if message is None:
            await self._error(problem)
        return message

    async def _join(self, message: dict[str, Any]) -> bool:
        """Handle a message before the join; ``False``: close the connection."""
        kind = message["type"]
        if kind != "join":
            await self._error("send 'join' first", kind)
            return True
        problem = join_problem(message)
        if problem is not None:
            await self._error(problem, "join")
            return True
        if "recorderToken" in message:
            return await self._join_recorder(message)
        closed = await self.directory.closed_meeting(self.name)
        if closed is not None:
            await self._error(closed, "join")
            return False
        key = message.get("roomKey")
        role = Role.HOST if self.directory.is_host_key(self.name, key) else Role.VISITOR
        if key and role is Role.VISITOR:
            log.warning("room %r: a wrong room key was given; joining as visitor", self.name)
        room = self.directory.room(self.name)
        if room.full:
            log.warning("room %r is full; a join was refused", self.name)
            await self._error("the room is full", "join")
            return False
        display = message.get("name") or ("Host" if role is Role.HOST else "Guest")
        try:
            # receive: false (a publish-only client): a Janus room offers it no subscription.
            client = await room.add(display, role, receive=message.get("receive") is not False)
        except Exception as exc:
            # Room.add has taken the half-joined client out again.
            if isinstance(exc, RecfwError):
                reason = str(exc)
                log.warning("room %r: a join failed: %s", self.name, exc)
            else:
                reason = "server error"
                log.exception("room %r: a join failed", self.name)
            await self._error(f"the join failed: {reason}", "join")
            if room.empty:
                await self.directory.retire(room)
            return False
        self.client, self.room = client, room
        self._writer = asyncio.ensure_future(_write(self.ws, client))
        return True

    async def _join_recorder(self, message: dict[str, Any]) -> bool:
        """A recorder process the server started joins with its one-time token."""
        self.recorder = True
        room = self.directory.recorder_room(self.name, message.get("recorderToken"))
        if room is None:
            log.warning("room %r: a recorder join with an unknown token was refused", self.name)
            await self._error("not a valid recorder token for this room", "join")
            return False
        self.client = await room.add("Recorder", Role.RECORDER)
        self.room = room
        self._writer = asyncio.ensure_future(_write(self.ws, self.client))
        return True

    async def _handle(self, message: dict[str, Any]) -> None:
        """A joined client's message: the room handles it; refusals become ``error``."""
        assert self.client is not None and self.room is not None
        kind = message["type"]
        try:
            await self.room.handle(self.client, message)
        except RecfwError as exc:
            self.client.send({"type": "error", "command": kind, "message": str(exc)})
        except Exception:
            log.exception("room %r: handling %r failed", self.name, kind)
            self.client.send({"type": "error", "command": kind, "message": "server error"})

    async def _leave(self) -> None:
        if self.client is not None and self.room is not None:
            await self.room.remove(self.client)
            if self.room.empty:
                await self.directory.retire(self.room)
        if self._writer is not None:
            self._writer.cancel()


async def hang_up(ws: web.WebSocketResponse, message: str) -> None:
    """Tell a client why, then close its WebSocket (its connection then leaves the room)."""
    with contextlib.suppress(Exception):
        await ws.send_json({"type": "error", "message": message})
        await ws.close()


def parse_message(text: str) -> tuple[dict[str, Any] | None, str]:
    """``(message, "")`` for a JSON object with a string ``type``; else ``(None, problem)``."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return None, "messages are JSON objects: this is not valid JSON (or nested too deeply)"
    if not isinstance(message, dict):
        return None, f"messages are JSON objects, not {_json_type(message)}"
    if not isinstance(message.get("type"), str):
        return None, "'type' must be a string naming the message (e.g. \"join\")"
    return message, ""


def join_problem(message: dict[str, Any]) -> str | None:
    """What is wrong with a ``join`` message's fields (``None``: nothing)."""
    for field in ("roomKey", "name", "recorderToken"):
        value = message.get(field)
        if value is not None and not isinstance(value, str):
            return f"join: '{field}' must be a string, not {_json_type(value)}"
    receive = message.get("receive")
    if receive is not None and not isinstance(receive, bool):
        return f"join: 'receive' must be true or false, not {_json_type(receive)}"
    return None


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


async def _write(ws: web.WebSocketResponse, client: Client) -> None:
    """Send the room's messages for ``client`` in order, until the socket closes."""
    while True:
        message = await client.queue.get()
        if ws.closed:
            return
        try:
            await ws.send_json(message)
        except (ConnectionError, RuntimeError):
            return
