"""One room on the server: its connected clients, its engine, and their messages.

A client is one WebSocket (a browser tab or ``recfw join``). The room tells
the engine who joins and leaves, wires every participant's media into the
others' slots (see :mod:`recfw.server.peer`), turns host commands into engine
calls, and tells every client the recording status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine import RoomEngine
from ..errors import RecfwError
from ..rooms import Participant, Role
from ..triggers import Action
from .peer import IngestPeer

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ..config import Config
    from ..manager import Plugins
    from ..queue.redisq import JobQueue
    from ..recording import RecordingSettings
    from ..session import RecordingSession
    from .janus_room import JanusRoomMedia

log = logging.getLogger(__name__)

#: People in a ``normal`` room (each browser's one connection carries ``people - 1`` slots).
MAX_PEOPLE = 4
#: Room modes: ``normal`` rooms hold :data:`MAX_PEOPLE`, ``group`` rooms ``[server] maxPeople``.
ROOM_MODES = ("normal", "group")


def room_capacity(mode: str, max_people: int) -> int:
    """How many people a room of ``mode`` holds (``group``: ``max_people``)."""
    if mode not in ROOM_MODES:
        raise ValueError(f"roomMode must be one of {', '.join(ROOM_MODES)}, not {mode!r}")
    return MAX_PEOPLE if mode == "normal" else max_people


@dataclass
class Client:
    """One connection in a room."""

    participant: Participant
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    peer: IngestPeer | None = None

    @property
    def id(self) -> str:
        return self.participant.id

    def send(self, message: dict[str, Any]) -> None:
        self.queue.put_nowait(message)

    def describe(self) -> dict[str, Any]:
        p = self.participant
        return {"id": p.id, "name": p.display_name, "role": str(p.role)}


class Room:
    """A room's clients and :class:`RoomEngine`.

    ``settings`` are the room's effective recording settings (a meeting's own,
    or the organization default); ``meeting_id`` goes into every event.
    """

    def __init__(
        self,
        name: str,
        settings: RecordingSettings,
        config: Config,
        plugins: Plugins,
        *,
        loopback_only: bool,
        spool_dir: Path | None = None,
        on_session_done: Callable[[Room, RecordingSession], None] | None = None,
        meeting_id: str | None = None,
        mode: str = "normal",
        base_url: Callable[[], str | None] | None = None,
        queue: JobQueue | None = None,
    ):
        self.name = name
        self.mode = mode
        self.capacity = room_capacity(mode, config.server.max_people)
        self.config = config
        self.on_session_done = on_session_done
        self._reported: set[int] = set()
        self._report_tasks: set[asyncio.Task] = set()
        self.settings = settings
        self.loopback_only = loopback_only
        self.clients: dict[str, Client] = {}
        self.engine = RoomEngine(
            name,
            settings,
            config,
            plugins,
            meeting_id=meeting_id,
            media_for=self._media_for,
            spool_dir=spool_dir,
            on_change=self._on_change,
        )
        #: ``[rooms] backend = "janus"``: the media goes through a Janus VideoRoom.
        self.janus: JanusRoomMedia | None = None
        if config.rooms.backend == "janus":
            if base_url is None:
                raise RecfwError(
                    "the janus room backend records in recorder processes: "
                    "run recfw run without --in-process"
                )
            from .janus_room import JanusRoomMedia

            self.janus = JanusRoomMedia(
                name,
                config.rooms,
                capacity=self.capacity,
                video_codec=config.server.video_codec,
                max_tiles=config.server.max_tiles,
                capture_width=config.server.video_width,
                describe=self._describe,
                send=self._send_to,
            )
        self._last_status: tuple[str, str | None] | None = None
        self._leaving = 0  # removals whose engine.leave() has not returned yet
        #: Participants whose media stopped and who have not sent any since (issue 9).
        self.reconnecting: set[str] = set()
        #: One-time tokens of the recorder processes this room started (see supervise()).
        self._recorder_tokens: set[str] = set()
        #: Recordings run in recorder processes (``recfw worker``); the server decodes nothing.
        self.supervised = base_url is not None
        if base_url is not None:
            self._supervise(base_url, meeting_id, queue)

    # --- recorder processes -----------------------------------------------------

    def _supervise(
        self,
        base_url: Callable[[], str | None],
        meeting_id: str | None,
        queue: JobQueue | None = None,
    ) -> None:
        """Each recording is made by a ``recfw worker`` process that joins this room:
        one this server starts, or (with ``queue``) one a queue worker admits."""
        from functools import partial

        from ..worker.supervisor import SupervisedSession

        if queue is not None:
            from ..queue.session import QueuedSession

            self.engine.session_factory = partial(
                QueuedSession,
                base_url=base_url,
                register_token=self._recorder_tokens.add,
                on_died=self.engine.recorder_died,
                meeting_id=self.engine.meeting_id,
                queue=queue,
                workers=self.config.workers,
                people=lambda: len(self.engine.state.people),
            )
            return
        self.engine.session_factory = partial(
            SupervisedSession,
            base_url=base_url,
            register_token=self._recorder_tokens.add,
            on_died=self.engine.recorder_died,
            meeting_id=self.engine.meeting_id,
        )

    def claim_recorder_token(self, token: object) -> bool:
        """Whether ``token`` is a recorder token this room made (each works once)."""
        import hmac

        if not isinstance(token, str) or not token:
            return False
        for known in list(self._recorder_tokens):
            if hmac.compare_digest(known.encode(), token.encode("utf-8", "surrogatepass")):
                self._recorder_tokens.discard(known)
                return True
        return False

    # --- membership ---------------------------------------------------------

    async def add(self, name: str, role: Role, *, receive: bool = True) -> Client:
        """A client joins (``receive=False``: it takes nobody's media; Janus rooms only)."""
        participant = Participant(
            id=f"{role}-{uuid.uuid4().hex[:8]}", display_name=name[:64], role=role
        )
        client = Client(participant)
        recorder = role == Role.RECORDER
        if self.janus is not None:
            await self.janus.open()  # the Janus room, made on the first join
        else:
            client.peer = IngestPeer(
                participant,
                loopback_only=self.loopback_only,
                video_codec=self.config.server.video_codec,
            )
            client.peer.on_media.append(self._on_peer_media)
        for other in self.clients.values():
            if not recorder:
                other.send({"type": "peer_joined", "peer": client.describe()})
        self.clients[client.id] = client
        client.send(
            {
                "type": "welcome",
                "id": client.id,
                "role": str(role),
                "room": self.name,
                "trigger": self.settings.start_trigger,
                "loopbackOnly": self.loopback_only,
                # The recorder sees everyone; a person everyone else.
                "slots": 0 if self.janus else self.capacity if recorder else self.capacity - 1,
                "mode": self.mode,
                # "janus": one upstream offer (simulcast), and Janus's subscription offers.
                "backend": "janus" if self.janus else "builtin",
                "video": {
                    "width": self.config.server.video_width,
                    "height": self.config.server.video_height,
                    "fps": self.config.server.video_fps,
                    "codec": self.config.server.video_codec,
                },
                "peers": [c.describe() for c in self._people() if c is not client],
                # People whose media stopped and who are reconnecting (see peer_media).
                "reconnecting": sorted(self.reconnecting),
                **self._status_for(client),
            }
        )
        log.info("room %r: %s joined as %s (%s)", self.name, client.id, role, name)
        if self.janus is not None and (receive or recorder):
            try:
                await self.janus.join_viewer(client.id, recorder=recorder)
            except BaseException:
                await self.remove(client)
                raise
        if recorder:  # the engine has its own recorder participant; never a person
            return client
        try:
            await self.engine.join(participant)
        except BaseException:
            # Not left half in the room: the others are told, the engine forgets
            # them, the peer is closed, and the room can empty again.
            try:
                await self.remove(client)
            except Exception:
                log.exception("room %r: cleaning up after %s's failed join", self.name, client.id)
            raise
        self._broadcast_status(force=True)
        return client

    async def remove(self, client: Client) -> None:
        if self.clients.pop(client.id, None) is None:
            return
        self._leaving += 1
        try:
            await self._remove(client)
        finally:
            self._leaving -= 1

    async def _remove(self, client: Client) -> None:
        log.info("room %r: %s left", self.name, client.id)
        self.reconnecting.discard(client.id)
        if self.janus is not None:
            await self._remove_janus(client)
            return
        if client.participant.role == Role.RECORDER:
            for other in self.clients.values():
                if other.peer is not None:
                    other.peer.hide(client.id)
            if client.peer is not None:
                await client.peer.close()
            return
        for other in self.clients.values():
            other.send({"type": "peer_left", "id": client.id})
            if other.peer is not None:
                slot = other.peer.hide(client.id)
                if slot is not None:
                    other.send({"type": "slot", "index": slot.index, "peer": None})
        try:
            await self.engine.leave(client.id)
        finally:
            if client.peer is not None:
                await client.peer.close()
            self._wire()

    async def _remove_janus(self, client: Client) -> None:
        assert self.janus is not None
        await self.janus.leave(client.id)
        try:
            if client.participant.role != Role.RECORDER:
                for other in self.clients.values():
                    other.send({"type": "peer_left", "id": client.id})
                await self.engine.leave(client.id)
        finally:
            if not self.clients:  # the last one left: the Janus room goes
                await self.janus.close()

    def _describe(self, participant_id: str) -> dict[str, Any] | None:
        client = self.clients.get(participant_id)
        return client.describe() if client is not None else None

    def _send_to(self, client_id: str, message: dict[str, Any]) -> None:
        client = self.clients.get(client_id)
        if client is not None:
            client.send(message)

    @property
    def empty(self) -> bool:
        """Nobody is in the room and nobody is still on their way out."""
        return not self.clients and not self._leaving

    @property
    def full(self) -> bool:
        return sum(1 for _ in self._people()) >= self.capacity

    def _people(self):
        """The clients that are not recorder processes."""
        return (c for c in self.clients.values() if c.participant.role != Role.RECORDER)

    def _wire(self) -> None:
        """Show every participant's media to every other (idempotent)."""
        for viewer in self.clients.values():
            if viewer.peer is None or not viewer.peer.negotiated:
                continue
            for other in self._people():
                if other is viewer or other.peer is None:
                    continue
                known = viewer.peer.slot_of(other.id) is not None
                slot = viewer.peer.show(other.peer)
                if slot is not None and not known:
                    viewer.send({"type": "slot", "index": slot.index, "peer": other.describe()})

    # --- messages from a client ---------------------------------------------

    async def handle(self, client: Client, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "offer":
            sdp = message.get("sdp")
            if not isinstance(sdp, str):
                client.send(
                    {"type": "error", "command": kind, "message": "offer: 'sdp' must be a string"}
                )
                return
            if self.janus is not None:
                if client.participant.role == Role.RECORDER:
                    raise RecfwError("offer: the recorder publishes nothing")
                answer = await self.janus.publish(client.id, client.participant.display_name, sdp)
                client.send({"type": "answer", "sdp": answer})
                return
            if client.peer is None:
                client.send({"type": "error", "command": kind, "message": "offer: not joined"})
                return
            if client.peer.negotiated:  # a new connection for the same participant
                await self._reconnect(client, sdp, message.get("reason"))
                return
            answer = await client.peer.accept_offer(sdp)
            self._watch(client, client.peer)
            client.send({"type": "answer", "sdp": answer})
            self._wire()
        elif kind == "subscribe_answer" and self.janus is not None:
            sdp = message.get("sdp")
            if not isinstance(sdp, str):
                raise RecfwError("subscribe_answer: 'sdp' must be a string")
            await self.janus.answer(client.id, sdp)
        elif kind == "recorder_view":
            hidden = message.get("hidden")
            if client.participant.role != Role.RECORDER:
                raise RecfwError("recorder_view: only the recorder sends it")
            if not isinstance(hidden, list) or not all(isinstance(h, str) for h in hidden):
                raise RecfwError("recorder_view: 'hidden' must be a list of participant ids")
            if client.peer is not None:  # Janus rooms: Janus forwards (not done there yet)
                log.info(
                    "room %r: the recorder shows no video of %s", self.name, hidden or "nobody"
                )
                client.peer.hide_video(set(hidden))
        elif kind in ("start_recording", "stop_recording"):
            if kind == "start_recording":
                decision = await self.engine.start_command(client.id)
            else:
                decision = await self.engine.stop_command(client.id)
            self._reply(client, kind, decision)
        elif kind == "prompt_answer":
            accepted = message.get("accepted")
            if not isinstance(accepted, bool):
                client.send(
                    {
                        "type": "error",
                        "command": kind,
                        "message": "prompt_answer: 'accepted' must be true or false",
                    }
                )
                return
            decision = await self.engine.prompt_answer(client.id, accepted)
            self._reply(client, kind, decision)
        else:
            client.send(
                {"type": "error", "command": kind, "message": f"unknown message type {kind!r}"}
            )

    def _reply(self, client: Client, command: str, decision) -> None:
        if decision.action == Action.REFUSE:
            log.warning(
                "room %r: %s by %s (%s) refused: %s",
                self.name,
                command,
                client.id,
                client.participant.role,
                decision.reason,
            )
            client.send({"type": "error", "command": command, "message": decision.reason})
        else:
            client.send(
                {
                    "type": "result",
                    "command": command,
                    "action": str(decision.action),
                    "reason": decision.reason,
                }
            )

    # --- media that stops, and reconnects (issue 9; see recfw.server.liveness) ----

    def _watch(self, client: Client, peer: IngestPeer) -> None:
        peer.start_watch(
            self.config.server.media_timeout,
            lambda cause: self._media_lost(client, peer, cause),
            lambda: self._media_flowing(client, peer),
        )

    def _media_lost(self, client: Client, peer: IngestPeer, cause: str) -> None:
        """``client``'s media stopped: warn once, tell them to reconnect, show it."""
        if client.peer is not peer or self.clients.get(client.id) is not client:
            return  # an old connection, or someone who left
        log.warning(
            "room %r: media from %s (%s) stopped: %s; asking them to reconnect",
            self.name,
            client.id,
            client.participant.role,
            cause,
        )
        client.send({"type": "media_lost", "cause": cause})
        self._set_reconnecting(client, True)

    def _media_flowing(self, client: Client, peer: IngestPeer) -> None:
        if client.peer is peer and client.id in self.reconnecting:
            log.info("room %r: media from %s flows again", self.name, client.id)
            self._set_reconnecting(client, False)

    def _set_reconnecting(self, client: Client, on: bool) -> None:
        """Tell everyone (and the recording) that ``client``'s tile is (no longer) reconnecting."""
        if client.participant.role == Role.RECORDER:
            return  # never a tile
        if on == (client.id in self.reconnecting):
            return
        if on:
            self.reconnecting.add(client.id)
        else:
            self.reconnecting.discard(client.id)
        state = "reconnecting" if on else "live"
        for other in self.clients.values():
            if other is not client:
                other.send({"type": "peer_media", "id": client.id, "state": state})
        session = self.engine.current_session
        mark = getattr(session, "set_reconnecting", None)
        if mark is not None:
            mark(client.id, on)

    async def _reconnect(self, client: Client, sdp: str, reason: object) -> None:
        """A new peer connection for ``client`` (same participant, same tiles and slots)."""
        old = client.peer
        assert old is not None
        peer = IngestPeer(
            client.participant,
            loopback_only=self.loopback_only,
            video_codec=self.config.server.video_codec,
        )
        peer.on_media.append(self._on_peer_media)
        try:
            answer = await peer.accept_offer(sdp)
        except BaseException:
            with contextlib.suppress(Exception):
                await peer.close()
            raise
        if self.clients.get(client.id) is not client:  # left while negotiating
            await peer.close()
            return
        if old.watch is not None and old.watch.lost is None:  # the page noticed first
            # (one line, bounded: it is the client's text)
            why = " ".join(reason.split())[:200] if isinstance(reason, str) else ""
            log.warning(
                "room %r: %s reconnects its media (the page says: %s)",
                self.name,
                client.id,
                why or "no reason given",
            )
            old.watch.stop()
            self._set_reconnecting(client, True)
        client.peer = peer
        self._watch(client, peer)
        client.send({"type": "answer", "sdp": answer})
        self._wire()  # the others' slots switch to the new tracks; ours get everyone
        log.info("room %r: %s has a new media connection", self.name, client.id)
        await old.close()

    # --- media ---------------------------------------------------------------

    def _media_for(self, participant: Participant):
        if self.supervised:  # the recorder process subscribes and decodes itself
            return None
        client = self.clients.get(participant.id)
        if client is None or client.peer is None:
            return None
        return client.peer.media()

    def _on_peer_media(self, peer: IngestPeer) -> None:
        self._wire()
        # Tracks arrived after the recording started: hand them to the recorder now.
        if self.engine.current_session is not None and not self.supervised:
            media = peer.media()
            if media is not None:
                self.engine.attach_media(media)

    # --- status to everyone ----------------------------------------------------

    def _status_for(self, client: Client) -> dict[str, Any]:
        return {
            "recording": self.engine.status,
            "prompt": self.engine.state.prompted == client.id,
        }

    async def _report_stored(self) -> None:
        await self.engine.wait_stored()
        for session in self.engine.sessions:
            if id(session) in self._reported or session.status not in ("stored", "failed"):
                continue
            self._reported.add(id(session))
            if self.on_session_done is None:  # unset after the report was scheduled
                continue
            try:
                self.on_session_done(self, session)
            except Exception:
                log.exception("room %r: on_session_done failed", self.name)

    def _on_change(self, engine: RoomEngine) -> None:
        if engine.status == "stopped" and self.on_session_done is not None:
            task = asyncio.get_running_loop().create_task(self._report_stored())
            self._report_tasks.add(task)
            task.add_done_callback(self._report_tasks.discard)
        if engine.status == "stopped" and not self.supervised:
            # The recorder's copies of the tracks are done; the next recording gets new ones.
            for client in self.clients.values():
                if client.peer is not None:
                    client.peer.release_media()
                    media = client.peer.media()
                    if media is not None:
                        engine.attach_media(media)
        self._broadcast_status()

    def _broadcast_status(self, force: bool = False) -> None:
        key = (self.engine.status, self.engine.state.prompted)
        if key == self._last_status and not force:
            return
        self._last_status = key
        for client in self.clients.values():
            client.send({"type": "recording", **self._status_for(client)})

    async def close(self) -> None:
        await self.engine.close()
        if self.janus is not None:
            await self.janus.close()
        if self._report_tasks:
            await asyncio.gather(*list(self._report_tasks), return_exceptions=True)
        for client in list(self.clients.values()):
            if client.peer is not None:
                with contextlib.suppress(Exception):
                    await client.peer.close()
