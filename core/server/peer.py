"""The server's end of one participant's WebRTC connection (SFU-style relay).

Every browser in a room keeps exactly one :class:`RTCPeerConnection`, to the
server. Its offer has, in this order: its own audio and video (``sendonly``),
then ``slots`` pairs of ``recvonly`` video + audio m-lines. The server decodes
the participant's tracks once; a :class:`MediaRelay` hands copies to the other
participants' slots (re-encoded by aiortc for each of them) and to the recorder
while a recording runs. A slot is switched to another participant with
:meth:`SlotTrack.set_source` — no renegotiation. A drain keeps reading each
received track so aiortc's frame queues never grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from ..errors import RecfwError
from ..rooms import Participant
from ..sources import ParticipantMedia
from .ice import filter_sdp

log = logging.getLogger(__name__)


class SlotTrack(MediaStreamTrack):
    """An outgoing track whose source can be switched (or be none: then it waits)."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.source: MediaStreamTrack | None = None
        self.peer_id: str | None = None
        self._changed = asyncio.Event()

    def set_source(self, source: MediaStreamTrack | None, peer_id: str | None) -> None:
        old = self.source
        self.source = source
        self.peer_id = peer_id
        if old is not None and old is not source:
            old.stop()
        self._changed.set()

    async def recv(self):
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            source = self.source
            if source is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            self._changed.clear()
            frame_task = asyncio.ensure_future(source.recv())
            change_task = asyncio.ensure_future(self._changed.wait())
            try:
                done, _ = await asyncio.wait(
                    {frame_task, change_task}, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                change_task.cancel()
            if frame_task in done:
                try:
                    return frame_task.result()
                except MediaStreamError:
                    if self.source is source:
                        self.source = None
                    continue
            frame_task.cancel()

    def stop(self) -> None:
        super().stop()
        if self.source is not None:
            self.source.stop()
            self.source = None
        self._changed.set()


class Slot:
    """One other participant's video + audio, sent to this participant."""

    def __init__(self, index: int):
        self.index = index
        self.video = SlotTrack("video")
        self.audio = SlotTrack("audio")
        self.peer_id: str | None = None


async def request_keyframe(pc: RTCPeerConnection, track: MediaStreamTrack) -> bool:
    """Send a PLI (RTCP picture loss indication) for ``track``: the sender answers with a
    keyframe, so a decoder that starts now gets a picture at once. True when sent."""
    for receiver in pc.getReceivers():
        if receiver.track is not track:
            continue
        sent = False
        for source in receiver.getSynchronizationSources():
            # aiortc has no public API for a PLI; the receiver's own method is used.
            await receiver._send_rtcp_pli(source.source)
            sent = True
        return sent
    return False


class IngestPeer:
    """Receives one participant's audio and video from their browser (or ``recfw join``)."""

    def __init__(self, participant: Participant, *, loopback_only: bool):
        self.participant = participant
        self.loopback_only = loopback_only
        # MAX_BUNDLE: one transport for all m-lines (with aiortc's default "balanced"
        # policy, a second video m-line of an incoming offer is never connected).
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.relay = MediaRelay()
        self.video: MediaStreamTrack | None = None
        self.audio: MediaStreamTrack | None = None
        self.on_media: list = []  # callbacks(IngestPeer) when a track arrives
        self._drains: list[asyncio.Task] = []
        self._proxies: list[MediaStreamTrack] = []
        self._first_video = asyncio.Event()
        self.slots: list[Slot] = []
        self.negotiated = False
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    @property
    def connection_state(self) -> str:
        return self.pc.connectionState

    def _on_state(self) -> None:
        log.info("peer %s: connection %s", self.participant.id, self.pc.connectionState)

    def _on_track(self, track: MediaStreamTrack) -> None:
        log.info("peer %s: %s track arrived", self.participant.id, track.kind)
        if track.kind == "video":
            self.video = track
        elif track.kind == "audio":
            self.audio = track
        else:
            return
        self._drains.append(asyncio.ensure_future(self._drain(track)))
        for callback in list(self.on_media):
            callback(self)

    async def _drain(self, track: MediaStreamTrack) -> None:
        proxy = self.relay.subscribe(track, buffered=False)
        first = True
        try:
            while True:
                await proxy.recv()
                if first and track.kind == "video":
                    first = False
                    self._first_video.set()
                    # The video starts: ask for a keyframe so no tile stays black.
                    await request_keyframe(self.pc, track)
        except (MediaStreamError, asyncio.CancelledError):
            pass
        finally:
            proxy.stop()

    async def accept_offer(self, sdp: str) -> str:
        """Answer the peer's (non-trickle) offer; return the answer SDP with our candidates."""
        if self.negotiated:
            raise RecfwError("this connection is already negotiated (one offer per join)")
        try:
            offer = RTCSessionDescription(filter_sdp(sdp, self.loopback_only), "offer")
            await self.pc.setRemoteDescription(offer)
        except Exception as exc:  # aiortc raises ValueError, AssertionError, ... on bad SDP
            raise RecfwError(f"offer: the SDP cannot be used: {_first_line(exc)}") from exc
        transceivers = self.pc.getTransceivers()
        # m-lines 0, 1: the participant's own audio and video; then (video, audio) slots.
        rest = transceivers[2:]
        for i in range(len(rest) // 2):
            video_t, audio_t = rest[2 * i], rest[2 * i + 1]
            if video_t.kind != "video" or audio_t.kind != "audio":
                raise RecfwError("offer: slots must be (video, audio) pairs after audio, video")
            slot = Slot(i)
            for t, track in ((video_t, slot.video), (audio_t, slot.audio)):
                t.direction = "sendonly"
                t.sender.replaceTrack(track)
            self.slots.append(slot)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self.negotiated = True
        return self.pc.localDescription.sdp

    def slot_of(self, peer_id: str) -> Slot | None:
        for slot in self.slots:
            if slot.peer_id == peer_id:
                return slot
        return None

    def show(self, other: IngestPeer) -> Slot | None:
        """Send ``other``'s tracks to this participant (in a free slot); ``None``: no slot."""
        slot = self.slot_of(other.participant.id)
        if slot is None:
            slot = next((s for s in self.slots if s.peer_id is None), None)
            if slot is None:
                return None
            slot.peer_id = other.participant.id
        if other.video is not None and slot.video.source is None:
            slot.video.set_source(other.relay.subscribe(other.video, buffered=False), slot.peer_id)
            asyncio.ensure_future(request_keyframe(other.pc, other.video))
        if other.audio is not None and slot.audio.source is None:
            slot.audio.set_source(other.relay.subscribe(other.audio, buffered=True), slot.peer_id)
        return slot

    def hide(self, peer_id: str) -> Slot | None:
        slot = self.slot_of(peer_id)
        if slot is not None:
            slot.peer_id = None
            slot.video.set_source(None, None)
            slot.audio.set_source(None, None)
        return slot

    async def wait_video(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_video.wait(), timeout)
        return self._first_video.is_set()

    def media(self) -> ParticipantMedia | None:
        """Fresh relayed copies of the tracks for the recorder (``None``: no tracks yet).

        The recorder is the only consumer of these copies: copies handed out
        before are stopped, so an unread buffered copy never piles up frames.
        """
        if self.video is None and self.audio is None:
            return None
        self.release_media()
        video = self.relay.subscribe(self.video, buffered=False) if self.video else None
        audio = self.relay.subscribe(self.audio, buffered=True) if self.audio else None
        self._proxies.extend(t for t in (video, audio) if t is not None)
        if self.video is not None:
            asyncio.ensure_future(request_keyframe(self.pc, self.video))
        return ParticipantMedia(self.participant, video=video, audio=audio)

    def release_media(self) -> None:
        """Stop the copies handed out by :meth:`media` (a recording ended)."""
        for proxy in self._proxies:
            proxy.stop()
        self._proxies.clear()

    async def close(self) -> None:
        self.release_media()
        for slot in self.slots:
            slot.video.stop()
            slot.audio.stop()
        for task in self._drains:
            task.cancel()
        await self.pc.close()


def _first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type when it has none."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
