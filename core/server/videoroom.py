"""Janus VideoRoom, as recfw uses it: a room, publishers, one multistream subscription each.

* :func:`create_room` / :func:`destroy_room`: the Janus room behind a recfw room
  (string ids; ``publishers`` = the room's capacity; one video codec, Opus).
* :class:`Publisher`: one participant's upstream peer connection: their offer
  goes to ``joinandconfigure`` (feed id = the recfw participant id), Janus's
  answer comes back. ``on_up`` is called when Janus says the media is up
  (``webrtcup``): only then can others subscribe to the feed.
* :class:`Subscriber`: one participant's (or the recorder's) downstream peer
  connection, ONE multistream subscription to every other publisher. Janus
  makes the offers (on the first ``join`` and on each change), the
  participant answers (``start``). Each video stream is sent at the simulcast
  layer :attr:`Subscriber.substream` (0 lowest .. 2 highest).

The WebSocket client underneath is :mod:`recfw.server.janus`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import RecfwError
from .janus import JanusHandle, JanusSession

log = logging.getLogger(__name__)

#: Seconds a participant gets to answer a subscription offer.
ANSWER_TIMEOUT = 15.0


async def create_room(
    handle: JanusHandle, room: str, *, publishers: int, video_codec: str, secret: str
) -> None:
    """Create the (temporary, private) Janus room ``room``."""
    await handle.message(
        {
            "request": "create",
            "room": room,
            "permanent": False,
            "is_private": True,
            "secret": secret,
            "publishers": publishers,
            "videocodec": video_codec.lower(),
            "audiocodec": "opus",
            "bitrate": 0,  # no cap from Janus (the browser caps its own layers)
            "fir_freq": 10,
            "notify_joining": False,
            "require_pvtid": False,
        }
    )


async def destroy_room(handle: JanusHandle, room: str, secret: str) -> None:
    await handle.message({"request": "destroy", "room": room, "secret": secret})


def _sdp(jsep: dict[str, Any] | None, kind: str) -> str:
    if not jsep or jsep.get("type") != kind or not isinstance(jsep.get("sdp"), str):
        raise RecfwError(f"Janus did not send an SDP {kind}")
    return jsep["sdp"]


class Publisher:
    """One participant's media going up to Janus (feed id ``feed``)."""

    def __init__(self, session: JanusSession, room: str, feed: str, display: str):
        self.session = session
        self.room = room
        self.feed = feed
        self.display = display
        self.handle: JanusHandle | None = None
        self.up = asyncio.Event()
        #: ``callback(publisher)`` once Janus has the media (subscribers may now take it).
        self.on_up: list[Callable[[Publisher], None]] = []

    async def publish(self, offer: str) -> str:
        """Publish with the participant's SDP ``offer`` (candidates in it); return the answer."""
        if self.handle is not None:
            raise RecfwError("this connection is already negotiated (one offer per join)")
        self.handle = await self.session.attach()
        self.handle.on_event.append(self._event)
        _, jsep = await self.handle.message(
            {
                "request": "joinandconfigure",
                "ptype": "publisher",
                "room": self.room,
                "id": self.feed,
                "display": self.display,
                "audio": True,
                "video": True,
            },
            {"type": "offer", "sdp": offer, "trickle": False},
        )
        return _sdp(jsep, "answer")

    def _event(self, message: dict[str, Any]) -> None:
        kind = message.get("janus")
        if kind == "webrtcup" and not self.up.is_set():
            log.info("Janus: %s publishes", self.feed)
            self.up.set()
            for callback in list(self.on_up):
                callback(self)
        elif kind == "hangup":
            log.info("Janus: %s's upstream hung up: %s", self.feed, message.get("reason"))

    async def close(self) -> None:
        if self.handle is not None:
            with contextlib.suppress(RecfwError):
                await self.handle.message({"request": "leave"})
            await self.handle.detach()


@dataclass(frozen=True)
class Stream:
    """One m-line of a subscription: its ``mid``, kind and whose feed it carries."""

    mid: str
    kind: str
    feed: str | None
    active: bool


def parse_streams(data: dict[str, Any]) -> list[Stream]:
    streams = []
    for s in data.get("streams") or []:
        if not isinstance(s, dict) or s.get("type") not in ("audio", "video"):
            continue  # data channels
        feed = s.get("feed_id")
        streams.append(
            Stream(
                str(s.get("mid")),
                s["type"],
                str(feed) if feed is not None else None,
                bool(s.get("active", True)) and feed is not None,
            )
        )
    return streams


class Subscriber:
    """One multistream subscription (a participant's or the recorder's downstream).

    ``on_offer(sdp, streams)`` is called with each SDP offer Janus makes (the
    first, and one per change); the participant's answer goes to :meth:`answer`.
    """

    def __init__(
        self,
        session: JanusSession,
        room: str,
        on_offer: Callable[[str, list[Stream]], None],
        *,
        substream: int = 2,
    ):
        self.session = session
        self.room = room
        self.on_offer = on_offer
        self.substream = substream
        self.handle: JanusHandle | None = None
        self.streams: list[Stream] = []
        self._lock = asyncio.Lock()
        self._queued: list[str] = []
        self._answered = asyncio.Event()
        self._answered.set()

    @property
    def feeds(self) -> set[str]:
        """The feeds this subscription carries now."""
        return {s.feed for s in self.streams if s.active and s.feed is not None}

    async def add(self, feeds: list[str]) -> None:
        """Subscribe to ``feeds`` too (those it has already are skipped).

        Feeds added while an earlier change waits for its answer go together, in
        one change (one offer to answer, not one per publisher who came up).
        """
        self._queued.extend(feeds)
        async with self._lock:
            await self._wait_answer()
            new = [f for f in dict.fromkeys(self._queued) if f not in self.feeds]
            self._queued.clear()
            if not new:
                return
            wanted = [{"feed": f} for f in new]
            if self.handle is None:
                self.handle = await self.session.attach()
                self.handle.on_event.append(self._event)
                body: dict[str, Any] = {
                    "request": "join",
                    "ptype": "subscriber",
                    "room": self.room,
                    "streams": wanted,
                    "use_msid": True,
                }
            else:
                body = {"request": "subscribe", "streams": wanted}
            data, jsep = await self.handle.message(body)
            self._offered(data, jsep)

    async def set_substream(self, substream: int) -> None:
        """Send every video stream at simulcast layer ``substream`` (0..2)."""
        self.substream = substream
        async with self._lock:
            await self._configure()

    async def _configure(self) -> None:
        mids = [s.mid for s in self.streams if s.kind == "video" and s.active]
        if self.handle is None or not mids:
            return
        with contextlib.suppress(RecfwError):  # a non-simulcast publisher: nothing to pick
            await self.handle.message(
                {
                    "request": "configure",
                    "streams": [{"mid": m, "substream": self.substream} for m in mids],
                }
            )

    def _offered(self, data: dict[str, Any], jsep: dict[str, Any] | None) -> None:
        if data.get("streams") is not None:
            self.streams = parse_streams(data)
        if jsep is not None and jsep.get("type") == "offer":
            self._answered.clear()
            self.on_offer(jsep["sdp"], list(self.streams))

    def _event(self, message: dict[str, Any]) -> None:
        """Janus changed the subscription on its own (a publisher left): a new offer."""
        if message.get("janus") != "event":
            return
        data = (message.get("plugindata") or {}).get("data") or {}
        if "streams" in data or message.get("jsep") is not None:
            self._offered(data, message.get("jsep"))

    async def _wait_answer(self) -> None:
        try:
            await asyncio.wait_for(self._answered.wait(), ANSWER_TIMEOUT)
        except TimeoutError:
            raise RecfwError(
                f"no answer to the subscription offer within {ANSWER_TIMEOUT:g} s"
            ) from None

    async def answer(self, sdp: str) -> None:
        """The participant's answer to the last offer (candidates in it)."""
        if self.handle is None:
            raise RecfwError("answer: there is no subscription offer to answer")
        await self.handle.message(
            {"request": "start"}, {"type": "answer", "sdp": sdp, "trickle": False}
        )
        self._answered.set()
        async with self._lock:
            await self._configure()

    async def close(self) -> None:
        if self.handle is not None:
            await self.handle.detach()
