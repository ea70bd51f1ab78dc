"""The server's end of one participant's WebRTC connection (a forwarding SFU).

Every browser in a room keeps exactly one :class:`RTCPeerConnection`, to the
server. Its offer has, in this order: its own audio and video (``sendonly``),
then ``slots`` pairs of ``recvonly`` video + audio m-lines. The server never
decodes or re-encodes what a participant sends: the receivers are tapped before
aiortc's decoder (:mod:`recfw.server.aiortc_tap`) and each encoded frame is
forwarded as it is to the other participants' slots (:class:`ForwardTrack`).
A slot is switched to another participant with :meth:`ForwardTrack.set_source`,
no renegotiation. Only the recorder gets decoded copies (:meth:`IngestPeer.media`),
decoded while it reads them.
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

from ..errors import RecfwError, first_line
from ..rooms import Participant
from ..sources import ParticipantMedia
from .aiortc_tap import ReceiverTap, install_forwarder, tap_receiver
from .forward import DecodedTrack, ForwardTrack
from .ice import filter_sdp
from .liveness import MediaWatch
from .sdp import prefer_codecs, sending_codecs

log = logging.getLogger(__name__)


class Slot:
    """One other participant's video + audio, sent to this participant."""

    def __init__(self, index: int):
        self.index = index
        self.video = ForwardTrack("video")
        self.audio = ForwardTrack("audio")
        self.peer_id: str | None = None


class IngestPeer:
    """One participant's connection: what they publish (tapped, never decoded) and their slots.

    ``video_codec`` is the room's video codec (``"VP8"`` or ``"H264"``): every
    m-line of the offer is answered with it first, so every participant sends
    it and every slot can carry any publisher's frames as they are.
    """

    def __init__(self, participant: Participant, *, loopback_only: bool, video_codec: str = "VP8"):
        self.participant = participant
        self.loopback_only = loopback_only
        self.video_codec = video_codec
        # MAX_BUNDLE: one transport for all m-lines (with aiortc's default "balanced"
        # policy, a second video m-line of an incoming offer is never connected).
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.video: ReceiverTap | None = None
        self.audio: ReceiverTap | None = None
        self.on_media: list = []  # callbacks(IngestPeer) when the published tracks are known
        self._tracks: dict[str, MediaStreamTrack] = {}
        self._recorder_tracks: list[DecodedTrack] = []
        self._first_video = asyncio.Event()
        self.slots: list[Slot] = []
        #: People whose video is not forwarded to this viewer (a recorder's hidden ones).
        self.hidden_video: set[str] = set()
        self.negotiated = False
        self.watch: MediaWatch | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    @property
    def connection_state(self) -> str:
        return self.pc.connectionState

    def _on_state(self) -> None:
        log.info("peer %s: connection %s", self.participant.id, self.pc.connectionState)

    def _on_track(self, track: MediaStreamTrack) -> None:
        log.info("peer %s: %s track arrived", self.participant.id, track.kind)
        if track.kind in ("audio", "video"):
            self._tracks[track.kind] = track

    async def accept_offer(self, sdp: str) -> str:
        """Answer the peer's (non-trickle) offer; return the answer SDP with our candidates."""
        if self.negotiated:
            raise RecfwError("this connection is already negotiated (one offer per join)")
        try:
            sdp = prefer_codecs(filter_sdp(sdp, self.loopback_only), self.video_codec)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        except RecfwError:
            raise
        except Exception as exc:  # aiortc raises ValueError, AssertionError, ... on bad SDP
            why = first_line(exc) or type(exc).__name__
            raise RecfwError(f"offer: the SDP cannot be used: {why}") from exc
        transceivers = self.pc.getTransceivers()
        # m-lines 0, 1: the participant's own audio and video; then (video, audio) slots.
        for transceiver in transceivers[:2]:
            track = self._tracks.get(transceiver.kind)
            if track is not None and transceiver.receiver.track is track:
                tap = tap_receiver(transceiver.receiver, transceiver.kind)
                setattr(self, transceiver.kind, tap)
        if self.video is not None:
            self.video.on_frame.append(self._video_frame)
        rest = transceivers[2:]
        for i in range(len(rest) // 2):
            video_t, audio_t = rest[2 * i], rest[2 * i + 1]
            if video_t.kind != "video" or audio_t.kind != "audio":
                raise RecfwError("offer: slots must be (video, audio) pairs after audio, video")
            slot = Slot(i)
            for t, track in ((video_t, slot.video), (audio_t, slot.audio)):
                t.direction = "sendonly"
                t.sender.replaceTrack(track)
                install_forwarder(t.sender, track.keyframe_requested)
            self.slots.append(slot)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        answer = self.pc.localDescription.sdp
        wanted = {"video": self.video_codec.lower(), "audio": "opus"}
        for index, (kind, codec) in enumerate(sending_codecs(answer)):
            if codec is not None and kind in wanted and codec != wanted[kind]:
                raise RecfwError(
                    f"offer: m-line {index} ({kind}) negotiated {codec}, not {wanted[kind]}"
                )
        for slot in self.slots:
            slot.video.codec = wanted["video"]
            slot.audio.codec = wanted["audio"]
        self.negotiated = True
        if self.video is not None or self.audio is not None:
            for callback in list(self.on_media):
                callback(self)
        return answer

    def start_watch(self, timeout: float, on_lost, on_flowing=None) -> MediaWatch:
        """Notice when this connection's media stops (see :mod:`recfw.server.liveness`):
        ``on_lost(cause)`` once; ``on_flowing()`` at the first published frame."""
        taps = [t for t in (self.video, self.audio) if t is not None]
        self.watch = MediaWatch(self.pc, taps, timeout, on_lost, on_flowing)
        return self.watch

    def _video_frame(self, frame) -> None:
        if not self._first_video.is_set():
            self._first_video.set()
            # The video starts: ask for a keyframe (the first may have come before the
            # receiver was ready), so no tile stays black.
            if self.video is not None:
                self.video.request_keyframe()
            size = self.video.size if self.video is not None else None
            log.info(
                "peer %s: video arrives (%s%s)",
                self.participant.id,
                frame.codec,
                f" {size[0]}x{size[1]}" if size else "",
            )

    def slot_of(self, peer_id: str) -> Slot | None:
        for slot in self.slots:
            if slot.peer_id == peer_id:
                return slot
        return None

    def show(self, other: IngestPeer) -> Slot | None:
        """Forward ``other``'s media to this participant (in a free slot); ``None``: no slot."""
        slot = self.slot_of(other.participant.id)
        if slot is None:
            slot = next((s for s in self.slots if s.peer_id is None), None)
            if slot is None:
                return None
            slot.peer_id = other.participant.id
        slot.video.hold(slot.peer_id in self.hidden_video)
        # A publisher that reconnected has new taps: the slot switches to them.
        if other.video is not None and slot.video.tap is not other.video:
            slot.video.set_source(other.video, slot.peer_id)  # asks for a keyframe
        if other.audio is not None and slot.audio.tap is not other.audio:
            slot.audio.set_source(other.audio, slot.peer_id)
        return slot

    def hide_video(self, peer_ids: set[str]) -> None:
        """Stop forwarding these people's video to this viewer (a recorder that shows
        them no tile); audio is always forwarded. Others' video is forwarded again."""
        self.hidden_video = set(peer_ids)
        for slot in self.slots:
            slot.video.hold(slot.peer_id is not None and slot.peer_id in self.hidden_video)

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
        """Fresh decoded copies of the tracks for the recorder (``None``: no tracks yet).

        The recorder is the only consumer of these copies, and the only reason the
        server decodes: copies handed out before are stopped, and a copy decodes
        only while it is read.
        """
        if self.video is None and self.audio is None:
            return None
        self.release_media()
        video = DecodedTrack(self.video) if self.video is not None else None
        audio = DecodedTrack(self.audio) if self.audio is not None else None
        self._recorder_tracks.extend(t for t in (video, audio) if t is not None)
        # A decoded frame's pts is the tap's timestamp: the publisher's sender
        # reports place it on their clock (lip sync, see recfw.media.lipsync).
        clocks = {
            tap.kind: tap.sender_clock
            for tap in (self.video, self.audio)
            if tap is not None and tap.sender_clock is not None
        }
        return ParticipantMedia(self.participant, video=video, audio=audio, clocks=clocks)

    def release_media(self) -> None:
        """Stop the copies handed out by :meth:`media` (a recording ended)."""
        for track in self._recorder_tracks:
            track.stop()
        self._recorder_tracks.clear()

    async def close(self) -> None:
        if self.watch is not None:
            self.watch.stop()  # closed on purpose: not a loss
        self.release_media()
        for slot in self.slots:
            slot.video.stop()
            slot.audio.stop()
        await self.pc.close()
