"""A recfw room's media on Janus (``[rooms] backend = "janus"``).

recfw keeps the room: the page, the signalling the browser talks to, who is
host or visitor, the triggers and the recording. The media goes through a
Janus VideoRoom: :class:`JanusRoomMedia` opens one Janus session per room,
creates the Janus room (``publishers`` = the room's capacity, the room's video
codec) and destroys it when the room closes, and relays SDP between each
client and Janus:

* a person's upstream (their ``offer`` message) becomes a
  :class:`~recfw.server.videoroom.Publisher` whose feed id is their
  participant id;
* each person and the recorder get ONE multistream
  :class:`~recfw.server.videoroom.Subscriber` to every other publisher whose
  media is up. Janus makes its offers; they go to the client as
  ``subscribe_offer {sdp, streams}`` (``streams``: ``{mid, kind, peer}``), and
  the client's ``subscribe_answer {sdp}`` goes back.

Simulcast layer rule: a person takes the layer that fits the tiles their page
shows (:func:`viewer_substream`): 1 other person: 2 (1280x720), 2 to 4: 1
(640x360), 5 or more: 0 (320x180). The recorder takes the highest layer its
composite can show (:func:`recorder_substream`): the smallest layer at least as
wide as a tile of the 1280x720 grid (1 person: 2; 2 to 9: 1; 10 or more with 16
tiles: 0). A higher layer would only be scaled down, at the cost of packets the
recorder must receive (a lost one costs the picture until the next keyframe)
and pixels it must decode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import RecfwError
from ..media.layout import grid
from .janus import JanusSession
from .videoroom import Publisher, Stream, Subscriber, create_room, destroy_room

if TYPE_CHECKING:
    from ..config import RoomsSettings

log = logging.getLogger(__name__)

#: The highest simulcast layer (the captured size; 1 is 1/2 of it, 0 is 1/4).
TOP_SUBSTREAM = 2
#: The recorder's composite (the tiles are cells of its grid).
COMPOSITE_SIZE = (1280, 720)


def recorder_substream(people: int, max_tiles: int, capture_width: int) -> int:
    """The recorder's layer: the smallest one at least as wide as a composite tile.

    ``people``: publishers in the room; ``max_tiles``: the composite's most tiles
    (``[server] maxTiles``); ``capture_width``: the publishers' camera width (the
    top layer's; ``[server] videoWidth``).
    """
    tiles = max(1, min(people, max_tiles))
    cell = grid(tiles, *COMPOSITE_SIZE)[0]
    for layer in range(TOP_SUBSTREAM):
        # (a few pixels short is as sharp: the tile keeps the picture's aspect ratio)
        if capture_width // 2 ** (TOP_SUBSTREAM - layer) >= cell.w * 0.95:
            return layer
    return TOP_SUBSTREAM


def viewer_substream(others: int) -> int:
    """The simulcast layer a person's page gets when it shows ``others`` other people."""
    if others <= 1:
        return 2
    if others <= 4:
        return 1
    return 0


class JanusRoomMedia:
    """The Janus side of one recfw room (see the module docstring).

    ``describe(participant_id)`` gives ``{id, name, role}`` of a person (``None``:
    gone); ``send(client_id, message)`` queues a message to a client.
    """

    def __init__(
        self,
        name: str,
        settings: RoomsSettings,
        *,
        capacity: int,
        video_codec: str,
        describe: Callable[[str], dict[str, Any] | None],
        send: Callable[[str, dict[str, Any]], None],
        max_tiles: int = 16,
        capture_width: int = COMPOSITE_SIZE[0],
    ):
        self.name = name
        self.max_tiles = max_tiles
        self.capture_width = capture_width
        self.settings = settings
        self.capacity = capacity
        self.video_codec = video_codec
        self.describe = describe
        self.send = send
        #: The Janus room id (unique per recfw room instance: a name may come back).
        self.room_id = f"recfw-{name}-{secrets.token_hex(4)}"
        self._room_secret = secrets.token_urlsafe(16)
        self.session: JanusSession | None = None
        self.publishers: dict[str, Publisher] = {}
        self.subscribers: dict[str, Subscriber] = {}
        self._recorders: set[str] = set()
        self._open_lock = asyncio.Lock()
        self._created = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        """Connect to Janus and create the room (once; again after :meth:`close`)."""
        async with self._open_lock:
            if self.session is not None and not self.session.closed.is_set():
                return
            self.session = await JanusSession.connect(
                self.settings.janus_url, self.settings.janus_api_secret
            )
            handle = await self.session.attach()
            try:
                await create_room(
                    handle,
                    self.room_id,
                    publishers=self.capacity,
                    video_codec=self.video_codec,
                    secret=self._room_secret,
                )
            finally:
                await handle.detach()
            self._created = True
            log.info("room %r: Janus room %s created", self.name, self.room_id)

    def _session(self) -> JanusSession:
        if self.session is None or self.session.closed.is_set():
            why = self.session.error if self.session is not None else "not connected"
            raise RecfwError(f"the room's media server (Janus) is not reachable: {why}")
        return self.session

    # --- people and the recorder ------------------------------------------------

    async def publish(self, client_id: str, display: str, sdp: str) -> str:
        """A person's offer: publish it in Janus; return Janus's answer."""
        if client_id in self.publishers:
            raise RecfwError("this connection is already negotiated (one offer per join)")
        publisher = Publisher(self._session(), self.room_id, client_id, display)
        self.publishers[client_id] = publisher
        publisher.on_up.append(self._publisher_up)
        try:
            return await publisher.publish(sdp)
        except RecfwError as exc:
            self.publishers.pop(client_id, None)
            with contextlib.suppress(Exception):
                await publisher.close()
            raise RecfwError(f"offer: {exc}") from None

    async def join_viewer(self, client_id: str, *, recorder: bool = False) -> None:
        """A person (or the recorder) joined: subscribe them to every publisher that is up."""
        if recorder:
            self._recorders.add(client_id)
        substream = self._substream(client_id)

        def offer(sdp: str, streams: list[Stream]) -> None:
            self._offer(client_id, sdp, streams)

        self.subscribers[client_id] = Subscriber(
            self._session(), self.room_id, offer, substream=substream
        )
        feeds = [f for f, p in self.publishers.items() if p.up.is_set() and f != client_id]
        if feeds:
            await self.subscribers[client_id].add(feeds)

    async def answer(self, client_id: str, sdp: str) -> None:
        subscriber = self.subscribers.get(client_id)
        if subscriber is None:
            raise RecfwError("subscribe_answer: there is no subscription offer to answer")
        await subscriber.answer(sdp)

    async def leave(self, client_id: str) -> None:
        self._recorders.discard(client_id)
        subscriber = self.subscribers.pop(client_id, None)
        publisher = self.publishers.pop(client_id, None)
        for part in (subscriber, publisher):
            if part is not None:
                with contextlib.suppress(Exception):
                    await part.close()
        self._relayer()

    def _people_up(self) -> int:
        return sum(1 for p in self.publishers.values() if p.up.is_set())

    def _publisher_up(self, publisher: Publisher) -> None:
        for viewer, subscriber in list(self.subscribers.items()):
            if viewer != publisher.feed:
                self._spawn(self._add(viewer, subscriber, publisher.feed))
        self._relayer()

    async def _add(self, viewer: str, subscriber: Subscriber, feed: str) -> None:
        try:
            await subscriber.add([feed])
        except RecfwError as exc:
            log.warning("room %r: subscribing %s to %s failed: %s", self.name, viewer, feed, exc)

    def _substream(self, viewer: str) -> int:
        """The simulcast layer ``viewer`` (a person or the recorder) takes now."""
        people = self._people_up()
        if viewer in self._recorders:
            return recorder_substream(people, self.max_tiles, self.capture_width)
        return viewer_substream(people - (1 if viewer in self.publishers else 0))

    def _relayer(self) -> None:
        """Give each viewer the simulcast layer that fits the tiles they show."""
        for viewer, subscriber in list(self.subscribers.items()):
            layer = self._substream(viewer)
            if layer != subscriber.substream:
                self._spawn(subscriber.set_substream(layer))

    def _offer(self, client_id: str, sdp: str, streams: list[Stream]) -> None:
        described = []
        for s in streams:
            peer = self.describe(s.feed) if s.active and s.feed is not None else None
            described.append({"mid": s.mid, "kind": s.kind, "peer": peer})
        self.send(client_id, {"type": "subscribe_offer", "sdp": sdp, "streams": described})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("room %r: Janus: %s", self.name, task.exception())

    # --- closing ----------------------------------------------------------------

    async def close(self) -> None:
        """Destroy the Janus room (everyone's peer connections in Janus go) and disconnect."""
        for task in list(self._tasks):
            task.cancel()
        for client_id in list(self.subscribers) + list(self.publishers):
            await self.leave(client_id)
        session, self.session = self.session, None
        if session is None:
            return
        try:
            if self._created and not session.closed.is_set():
                handle = await session.attach()
                await destroy_room(handle, self.room_id, self._room_secret)
                log.info("room %r: Janus room %s destroyed", self.name, self.room_id)
        except RecfwError as exc:
            log.warning(
                "room %r: destroying Janus room %s failed: %s", self.name, self.room_id, exc
            )
        finally:
            self._created = False
            await session.close()
