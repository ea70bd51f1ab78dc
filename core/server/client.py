"""A headless participant: joins a room over real WebRTC (aiortc), as ``recfw join`` does.

It speaks the same protocol as the room page: a ``join`` message on the room's
WebSocket, then one offer with its own audio and video (and, if asked, slots to
receive the others, which it reads and discards). In a Janus room
(``welcome.backend == "janus"``) the offer carries only its own media, and, if
asked to receive, a second peer connection answers the room's
``subscribe_offer`` messages (Janus's multistream subscription). Like the page,
when the server says ``media_lost`` it makes a new connection on the same
WebSocket session.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import MediaStreamError

from ..errors import RecfwError
from ..secrets import Secret
from ..sources import ParticipantMedia
from .aiortc_tap import ReceiverTap, install_forwarder, tap_receiver
from .encoded_source import PreEncodedTrack
from .ice import filter_sdp, restrict_host_addresses

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoomUrl:
    """A room link taken apart: where its WebSocket is, the room and the host key."""

    base: str
    room: str
    room_key: str | None = field(default=None, repr=False)  # a host key is a secret

    @property
    def ws_url(self) -> str:
        scheme = "wss" if self.base.startswith("https") else "ws"
        return f"{scheme}{self.base[self.base.index(':') :]}/{self.room}/ws"

    @property
    def host(self) -> str:
        return urlsplit(self.base).hostname or ""

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


_ROOM_KEY = re.compile(r"(roomKey=)[^&#]*", re.IGNORECASE)


def mask_room_key(url: str) -> str:
    """``url`` with its ``roomKey`` value masked (a host key never goes into messages or logs)."""
    return _ROOM_KEY.sub(lambda m: m.group(1) + Secret.MASK, url)


def parse_room_url(url: str) -> RoomUrl:
    """``http://host:port/<room>[?roomKey=…]`` -> :class:`RoomUrl`; clear error otherwise."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise RecfwError(f"room URL {mask_room_key(url)!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RecfwError(
            f"room URL: expected http(s)://host:port/<room>, got {mask_room_key(url)!r}"
        )
    room = parts.path.strip("/")
    if not room or "/" in room:
        raise RecfwError(f"room URL: the path must be the room name (/<room>), got {parts.path!r}")
    key = parse_qs(parts.query).get("roomKey", [None])[0]
    return RoomUrl(f"{parts.scheme}://{parts.netloc}", room, key)


class _Lent(MediaStreamTrack):
    """A source track lent to one connection's sender: aiortc stops a sender's track
    when the connection closes, and this stops only the loan (the source lives on
    for the next connection after a reconnection)."""

    def __init__(self, source: MediaStreamTrack):
        super().__init__()
        self.kind = source.kind
        self.source = source

    async def recv(self):  # whatever the source yields
        if self.readyState != "live" or self.source.readyState != "live":
            raise MediaStreamError
        return await self.source.recv()


@dataclass
class JoinResult:
    """What happened while the headless participant was in the room."""

    participant_id: str | None = None
    role: str | None = None
    statuses: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connection_state: str | None = None
    #: Why the server said our media stopped, each time (``media_lost``).
    media_lost: list[str] = field(default_factory=list)
    #: New media connections made after the first (reconnections).
    reconnects: int = 0


class HeadlessParticipant:
    """One participant in a room, sending ``media``'s tracks.

    ``receive`` also receives the others (decoded and thrown away). With
    ``tap_received`` the received media is not decoded at all: each slot's
    encoded frames are in :attr:`received` (``(video tap, audio tap)`` per slot),
    as a forwarding test or a cheap load generator wants. Tracks that are
    :class:`~recfw.server.encoded_source.PreEncodedTrack` are sent as they are.
    """

    def __init__(
        self,
        url: str,
        media: ParticipantMedia,
        *,
        name: str = "headless",
        receive: bool = False,
        tap_received: bool = False,
        on_message: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.url = parse_room_url(url)
        self.media = media
        self.name = name
        self.receive = receive or tap_received
        self.tap_received = tap_received
        self.received: list[tuple[ReceiverTap, ReceiverTap]] = []
        #: Janus rooms: the subscription's peer connection (``receive`` only).
        self.sub_pc: RTCPeerConnection | None = None
        self._tapped: set[str] = set()  # mids whose receivers are tapped
        self.slots: dict[int, dict[str, Any] | None] = {}
        self.on_message = on_message
        self.result = JoinResult()
        self.pc: RTCPeerConnection | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._session: aiohttp.ClientSession | None = None
        self._reader: asyncio.Task | None = None
        self._blackhole = MediaBlackhole()
        self._connected = asyncio.Event()
        self._welcome = asyncio.Event()
        self._pending: dict[str, asyncio.Future] = {}
        self._loopback = self.url.is_loopback
        self._closed = False
        self.backend = "builtin"
        self._slots: int | None = None

    async def __aenter__(self) -> HeadlessParticipant:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self, timeout: float = 15.0) -> None:
        """Join, negotiate, and wait until the media connection is up.

        Raises :class:`RecfwError` (and closes everything) when the server cannot
        be reached, refuses the join, or does not answer within ``timeout`` seconds.
        """
        try:
            await self._connect(timeout)
        except BaseException:
            await self.close()
            raise

    async def _connect(self, timeout: float) -> None:
        self._session = aiohttp.ClientSession()
        try:
            self._ws = await asyncio.wait_for(self._session.ws_connect(self.url.ws_url), timeout)
        except (aiohttp.ClientError, OSError) as exc:
            raise RecfwError(f"cannot reach the room at {self.url.ws_url}: {exc}") from None
        except TimeoutError:
            raise RecfwError(
                f"no answer from the room server at {self.url.ws_url} within {timeout:g} s"
            ) from None
        join: dict[str, Any] = {"type": "join", "name": self.name, "roomKey": self.url.room_key}
        if not self.receive:
            join["receive"] = False  # a Janus room then offers no subscription
        await self._ws.send_json(join)
        self._reader = asyncio.ensure_future(self._read())
        try:
            await asyncio.wait_for(self._welcome.wait(), timeout)
        except TimeoutError:
            raise RecfwError(
                f"no answer from the room server at {self.url.ws_url} within {timeout:g} s"
            ) from None
        if self.result.participant_id is None:
            raise RecfwError("; ".join(self.result.errors) or "the room refused the join")
        connected = asyncio.ensure_future(self._connected.wait())
        await asyncio.wait(
            {connected, self._reader}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if self._connected.is_set():
            return
        connected.cancel()
        if self._reader.done():  # the server hung up, or sent something unreadable
            raise RecfwError(
                "; ".join(self.result.errors) or "the room server closed the connection"
            )
        state = self.result.connection_state or "not started"
        raise RecfwError(
            f"media not connected within {timeout:g} s (connection {state}); "
            "check the server's iceAddresses"
        )

    async def _reconnect(self, cause: str) -> None:
        """A new media connection on the same WebSocket (the server said ours stopped)."""
        self.result.media_lost.append(cause)
        if self._closed or self._slots is None:
            return
        log.warning("%s: media stopped (%s); reconnecting", self.name, cause)
        self.result.reconnects += 1
        old, self.pc = self.pc, None
        self._connected.clear()
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        self.received.clear()
        await self._negotiate(self._slots, reason=cause)

    async def _negotiate(self, slots: int, reason: str | None = None) -> None:
        self._slots = slots
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.pc = pc

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc is not self.pc:
                return
            self.result.connection_state = pc.connectionState
            log.info("%s: connection %s", self.name, pc.connectionState)
            if pc.connectionState == "connected":
                self._connected.set()

        @pc.on("track")
        def _track(track) -> None:
            self._blackhole.addTrack(track)

        for kind, track in (("audio", self.media.audio), ("video", self.media.video)):
            if track is not None:
                transceiver = pc.addTransceiver(_Lent(track), direction="sendonly")
                if isinstance(track, PreEncodedTrack):
                    install_forwarder(transceiver.sender, track.keyframe_requested)
            elif self.backend != "janus":
                # (Janus rejects an inactive m-line without codecs, which aiortc refuses:
                # a Janus publisher without that kind simply offers no m-line for it)
                pc.addTransceiver(kind, direction="inactive")
        for _ in range(slots if self.receive else 0):
            video = pc.addTransceiver("video", direction="recvonly")
            audio = pc.addTransceiver("audio", direction="recvonly")
            if self.tap_received:
                self.received.append(
                    (tap_receiver(video.receiver, "video"), tap_receiver(audio.receiver, "audio"))
                )
        await pc.setLocalDescription(await pc.createOffer())
        assert self._ws is not None
        offer = {"type": "offer", "sdp": filter_sdp(pc.localDescription.sdp, self._loopback)}
        if reason is not None:
            offer["reason"] = reason
        await self._ws.send_json(offer)

    async def _subscribe_offer(self, message: dict[str, Any]) -> None:
        """Answer Janus's subscription offer (a Janus room, ``receive`` only)."""
        if not self.receive:
            return
        assert self._ws is not None
        if self.sub_pc is None:
            self.sub_pc = RTCPeerConnection(
                RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
            )
            if not self.tap_received:
                self.sub_pc.on("track", self._blackhole.addTrack)
        pc = self.sub_pc
        offer = filter_sdp(str(message["sdp"]), self._loopback)
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        if self.tap_received:
            by_peer: dict[str, dict[str, ReceiverTap]] = {}
            peers = {
                str(s.get("mid")): s.get("peer")
                for s in message.get("streams") or []
                if isinstance(s, dict)
            }
            for t in pc.getTransceivers():
                peer = peers.get(str(t.mid))
                if t.mid is None or t.mid in self._tapped or not isinstance(peer, dict):
                    continue
                self._tapped.add(t.mid)
                by_peer.setdefault(str(peer.get("id")), {})[t.kind] = tap_receiver(
                    t.receiver, t.kind
                )
            for taps in by_peer.values():
                if "video" in taps and "audio" in taps:
                    self.received.append((taps["video"], taps["audio"]))
        await pc.setLocalDescription(await pc.createAnswer())
        await self._ws.send_json(
            {"type": "subscribe_answer", "sdp": filter_sdp(pc.localDescription.sdp, self._loopback)}
        )

    async def _read(self) -> None:
        try:
            await self._read_messages()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a malformed answer: reported, not a stray traceback
            log.warning("%s: bad message from the room server: %r", self.name, exc)
            self.result.errors.append(f"bad message from the room server: {exc!r}")
        finally:
            self._welcome.set()

    async def _read_messages(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            message = msg.json()
            if not isinstance(message, dict):
                raise ValueError(f"not a JSON object: {str(msg.data)[:80]!r}")
            kind = message.get("type")
            if self.on_message is not None:
                self.on_message(message)
            if kind == "welcome":
                self.result.participant_id = message["id"]
                self.result.role = message["role"]
                self._welcome.set()
                self.backend = str(message.get("backend") or "builtin")
                # The room's media addresses decide, not the URL (127.0.0.1 on the
                # server's own machine may front non-loopback iceAddresses).
                self._loopback = bool(message.get("loopbackOnly", self.url.is_loopback))
                if self._loopback:
                    restrict_host_addresses(["127.0.0.1"])
                await self._negotiate(int(message.get("slots", 0)))
            elif kind == "subscribe_offer":
                await self._subscribe_offer(message)
            elif kind == "answer":
                answer = RTCSessionDescription(filter_sdp(message["sdp"], self._loopback), "answer")
                if self.pc is None:
                    raise ValueError("an answer before this client sent an offer")
                await self.pc.setRemoteDescription(answer)
                await self._blackhole.start()
            elif kind == "slot":
                self.slots[int(message["index"])] = message.get("peer")
            elif kind == "media_lost":
                await self._reconnect(str(message.get("cause")))
            elif kind == "recording":
                status = message.get("recording")
                if isinstance(status, str) and self.result.statuses[-1:] != [status]:
                    self.result.statuses.append(status)
            elif kind == "error":
                self.result.errors.append(str(message.get("message")))
                self._settle(message.get("command"), RecfwError(str(message.get("message"))))
                if message.get("command") == "join":
                    self._welcome.set()
            elif kind == "result":
                self._settle(message.get("command"), None)

    def _settle(self, command: str | None, error: Exception | None) -> None:
        future = self._pending.pop(command or "", None)
        if future is not None and not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    async def command(self, kind: str, **extra: Any) -> None:
        """Send ``start_recording`` / ``stop_recording`` / ``prompt_answer``; raise if refused."""
        future = asyncio.get_running_loop().create_future()
        self._pending[kind] = future
        if self._ws is None:
            raise RecfwError(f"{kind}: not connected to the room")
        await self._ws.send_json({"type": kind, **extra})
        try:
            await asyncio.wait_for(future, 10)
        except TimeoutError:
            self._pending.pop(kind, None)
            raise RecfwError(f"no answer to {kind!r} from the room server within 10 s") from None

    async def close(self) -> None:
        """Leave: close the media connection, the WebSocket and the tracks (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            with contextlib.suppress(Exception):
                await self._blackhole.stop()
            for pc in (self.pc, self.sub_pc):
                if pc is not None:
                    with contextlib.suppress(Exception):
                        await pc.close()
            if self._ws is not None:
                with contextlib.suppress(Exception):
                    await self._ws.close()
        finally:
            if self._reader is not None:
                self._reader.cancel()
            if self._session is not None:
                await self._session.close()
            self.media.stop()
