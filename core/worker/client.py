"""The worker's end: join a room as ``recorder``, subscribe to everyone, record.

The recorder is an ordinary WebRTC participant of the forwarding room server
with two differences: it joins with the one-time recorder token of its job
(role ``recorder``: never a tile, never counted as a person), and it publishes
nothing. Its offer has ``slots`` pairs of ``recvonly`` video + audio m-lines;
the server forwards each person's encoded media into a slot and says who is in
which slot (``slot`` messages). The worker's receivers are tapped (aiortc's
decoders never run): each slot's person gets fresh
:class:`~recfw.server.forward.DecodedTrack` copies that decode only while the
recorder reads them, and the recorder pauses the video of people without a tile
(the active grid), so their video is not decoded at all. Each slot's person is
a participant of the :class:`~recfw.media.CompositeRecorder` that writes the
spool file.

In a room whose media goes through Janus (``welcome.backend == "janus"``) the
recorder sends no offer: the room server subscribes it to every publisher
with ONE multistream subscription (the highest simulcast layer) and relays
Janus's offers (``subscribe_offer {sdp, streams}``, one per change); the
recorder answers each (``subscribe_answer``) on the same peer connection, and
each ``streams`` entry says whose media an m-line (``mid``) carries.

When its own media connection to the room server dies (it fails or closes, or
the server says ``media_lost``), the worker makes a new one on the same
WebSocket session: the server re-announces who is in which slot, and each
person's new tracks replace the old ones in the same tile
(:meth:`~recfw.media.CompositeRecorder.add` keeps a participant's place). A
``peer_media`` message marks a person's tile as reconnecting (their media
stopped) and live again.

State goes back to the room server as lines on stdout (see
:func:`recfw.worker.job.state_line`): ``joined``, ``recording``, ``stopped``
(with the recording's figures) or ``failed`` (with why).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any

import aiohttp
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from ..errors import RecfwError
from ..rooms import Participant, Role
from ..server.aiortc_tap import ReceiverTap, tap_receiver
from ..server.client import parse_room_url
from ..server.forward import DecodedTrack
from ..server.ice import filter_sdp, restrict_host_addresses
from ..sources import ParticipantMedia
from .job import RecordingJob, state_line

log = logging.getLogger(__name__)

#: Seconds to join and get the media connection up.
CONNECT_TIMEOUT = 20.0
#: Reconnections of the recorder's own media connection, at most, in one recording
#: (each waits up to CONNECT_TIMEOUT; past that the recording ends as before).
MAX_RECONNECTS = 20


class RecorderClient:
    """The recorder's signalling + media connection to one room.

    ``on_person(participant, media)`` is called when a person appears (in a slot,
    or in a Janus room's subscription) or their tracks change (a reconnection:
    theirs or ours); ``on_gone(participant_id)`` when they are in no slot any
    more; ``on_reconnecting(participant_id, bool)`` when their media stops or
    flows again. The media are fresh decoded copies of the received (tapped)
    tracks, stopped once they are replaced or the person is gone. They carry
    each track's :class:`~recfw.server.aiortc_tap.SenderClock`: the server
    forwards each publisher's RTCP sender reports (their capture clock), by
    which the recorder lines each person's video up with their audio.
    """

    def __init__(
        self,
        job: RecordingJob,
        on_person: Callable[[Participant, Any], None],
        on_gone: Callable[[str], None],
        on_reconnecting: Callable[[str, bool], None] | None = None,
    ):
        self.job = job
        self.url = parse_room_url(f"{job.base_url.rstrip('/')}/{job.room}")
        self.on_person = on_person
        self.on_gone = on_gone
        self.on_reconnecting = on_reconnecting
        self.reconnects = 0
        self._reconnecting: asyncio.Task[None] | None = None
        self._closing = False
        self._slots = 0
        #: People whose media stopped (``peer_media``; ``welcome.reconnecting``).
        self._marked: set[str] = set()
        self.pc: RTCPeerConnection | None = None
        self.closed = asyncio.Event()
        self.errors: list[str] = []
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._welcome = asyncio.Event()
        self._connected = asyncio.Event()
        self._taps: dict[int, tuple[ReceiverTap, ReceiverTap]] = {}
        self._media: dict[int, ParticipantMedia] = {}
        self._peers: dict[int, dict[str, Any] | None] = {}
        self._shown: dict[int, str | None] = {}
        #: Whether the room's media is on loopback only (the welcome's ``loopbackOnly``:
        #: the server's ``iceAddresses``, not the address the recorder reached it at).
        self._loopback = self.url.is_loopback
        #: Janus rooms: the person (by participant id) whose media each mid carries.
        self._mids: dict[str, dict[str, Any]] = {}
        self._people: dict[str, Participant] = {}
        #: Every person's decoded video tracks so far (old ones too): what was decoded.
        self._video_tracks: dict[str, list[DecodedTrack]] = {}
        #: People whose video the recorder shows no tile (the room server forwards none).
        self._hidden_video: set[str] = set()
        #: Janus rooms: the tapped receivers by mid, and each person's decoded copies.
        self._mid_taps: dict[str, ReceiverTap] = {}
        self._janus_media: dict[str, ParticipantMedia] = {}

    async def connect(self) -> None:
        self._session = aiohttp.ClientSession()
        try:
            self._ws = await asyncio.wait_for(
                self._session.ws_connect(self.url.ws_url, heartbeat=10), CONNECT_TIMEOUT
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise RecfwError(f"cannot reach the room at {self.url.ws_url}: {exc!r}") from None
        await self._ws.send_json(
            {"type": "join", "name": "Recorder", "recorderToken": self.job.token}
        )
        self._reader = asyncio.ensure_future(self._read())
        done = asyncio.ensure_future(self._connected.wait())
        await asyncio.wait(
            {done, self._reader}, timeout=CONNECT_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if not self._connected.is_set():
            done.cancel()
            raise RecfwError(
                "; ".join(self.errors) or "the recorder's media connection did not come up"
            )

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                await self._message(msg.json())
        except Exception as exc:  # noqa: BLE001 - reported as the reason the worker stops
            self.errors.append(f"signalling failed: {exc!r}")
        finally:
            self.closed.set()

    async def _message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "welcome":
            if message.get("role") != str(Role.RECORDER):
                raise RecfwError(f"joined as {message.get('role')!r}, not as the recorder")
            self._welcome.set()
            # A recorder on the server's machine reaches it at 127.0.0.1 while the room's
            # media may be on other addresses (iceAddresses): those decide, not the URL.
            self._loopback = bool(message.get("loopbackOnly", self.url.is_loopback))
            if self._loopback:
                restrict_host_addresses(["127.0.0.1"])
            self._marked.update(str(pid) for pid in message.get("reconnecting") or ())
            if message.get("backend") == "janus":
                self._janus_pc()
            else:
                self._slots = int(message.get("slots", 0))
                await self._negotiate(self._slots)
        elif kind == "subscribe_offer":
            await self._subscribe_offer(message)
        elif kind == "answer":
            assert self.pc is not None
            sdp = filter_sdp(message["sdp"], self._loopback)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
            if self._hidden_video:  # a new connection: its slots forward everything
                await self._send_view()
        elif kind == "slot":
            self._peers[int(message["index"])] = message.get("peer")
            self._sync(int(message["index"]))
        elif kind == "peer_left":
            self._left(str(message.get("id")))
        elif kind == "peer_media":
            pid, on = str(message.get("id")), message.get("state") != "live"
            if on:
                self._marked.add(pid)
            else:
                self._marked.discard(pid)
            if self.on_reconnecting is not None:
                self.on_reconnecting(pid, on)
        elif kind == "media_lost":
            self.reconnect(str(message.get("cause") or "the server says our media stopped"))
        elif kind == "error":
            self.errors.append(str(message.get("message")))
            if message.get("command") == "join" or message.get("command") is None:
                raise RecfwError(str(message.get("message")))

    def reconnect(self, cause: str) -> None:
        """Our media connection died: make a new one on the same WebSocket (once at a time)."""
        if self._closing or self.closed.is_set() or self._ws is None:
            return
        if self._reconnecting is not None and not self._reconnecting.done():
            return
        if self.reconnects >= MAX_RECONNECTS:
            self.errors.append(f"media connection lost ({cause}) {self.reconnects} times")
            self.closed.set()
            return
        self.reconnects += 1
        log.warning(
            "recorder for room %r: the media connection to the room server died (%s); "
            "reconnecting (%d)",
            self.job.room,
            cause,
            self.reconnects,
        )
        self._reconnecting = asyncio.ensure_future(self._reconnect(cause))

    async def _reconnect(self, cause: str) -> None:
        old = self.pc
        self.pc = None
        self._connected.clear()
        # The server re-announces every slot for the new connection.
        self._taps.clear()
        self._peers.clear()
        self._shown.clear()
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        try:
            await self._negotiate(self._slots, reason=cause)
            await asyncio.wait_for(self._connected.wait(), CONNECT_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - the recording ends with the reason
            self.errors.append(f"reconnecting the media connection failed: {exc!r}")
            self.closed.set()
            return
        log.info("recorder for room %r: media connection up again", self.job.room)

    async def _negotiate(self, slots: int, reason: str | None = None) -> None:
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.pc = pc

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc is not self.pc:
                return  # an old connection
            log.info("recorder: connection %s", pc.connectionState)
            if pc.connectionState == "connected":
                self._connected.set()
            elif pc.connectionState in ("failed", "closed") and not self._closing:
                if not self._connected.is_set() and self.reconnects == 0:
                    self.errors.append(f"media connection {pc.connectionState}")
                    self.closed.set()  # never came up: the join fails as before
                else:
                    self.reconnect(f"the media connection {pc.connectionState}")

        pc.addTransceiver("audio", direction="inactive")
        pc.addTransceiver("video", direction="inactive")
        for slot in range(slots):
            video = pc.addTransceiver("video", direction="recvonly")
            audio = pc.addTransceiver("audio", direction="recvonly")
            # Tapped before the connection starts: aiortc decodes nothing here.
            self._taps[slot] = (
                tap_receiver(video.receiver, "video"),
                tap_receiver(audio.receiver, "audio"),
            )
        await pc.setLocalDescription(await pc.createOffer())
        assert self._ws is not None
        offer = {"type": "offer", "sdp": filter_sdp(pc.localDescription.sdp, self._loopback)}
        if reason is not None:
            offer["reason"] = reason
        await self._ws.send_json(offer)
        for slot in list(self._peers):
            self._sync(slot)

    # --- Janus: one multistream subscription, renegotiated on each change ---------

    def _janus_pc(self) -> None:
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.pc = pc

        @pc.on("connectionstatechange")
        def _state() -> None:
            log.info("recorder: connection %s", pc.connectionState)
            if pc.connectionState == "connected":
                self._connected.set()
            elif pc.connectionState in ("failed", "closed"):
                self.errors.append(f"media connection {pc.connectionState}")
                self.closed.set()

        # Nobody may be publishing yet: the recorder is "connected" when it is in the
        # room; its media connection comes with the first subscription offer.
        self._connected.set()

    async def _subscribe_offer(self, message: dict[str, Any]) -> None:
        assert self.pc is not None and self._ws is not None
        streams = message.get("streams") or []
        sdp = filter_sdp(str(message["sdp"]), self._loopback)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        # New m-lines are tapped before their receivers start: aiortc decodes nothing.
        for transceiver in self.pc.getTransceivers():
            mid = transceiver.mid
            if (
                mid is not None
                and mid not in self._mid_taps
                and transceiver.kind
                in (
                    "audio",
                    "video",
                )
            ):
                self._mid_taps[mid] = tap_receiver(transceiver.receiver, transceiver.kind)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self._ws.send_json(
            {
                "type": "subscribe_answer",
                "sdp": filter_sdp(self.pc.localDescription.sdp, self._loopback),
            }
        )
        self._mids = {
            str(s["mid"]): s["peer"]
            for s in streams
            if isinstance(s, dict) and isinstance(s.get("peer"), dict)
        }
        self._sync_janus()

    def _sync_janus(self) -> None:
        """Tell ``on_person`` who is in the subscription now (with whatever they publish)."""
        taps: dict[str, dict[str, ReceiverTap]] = {}
        for mid, peer in self._mids.items():
            tap = self._mid_taps.get(mid)
            if tap is None:
                continue
            pid = str(peer["id"])
            taps.setdefault(pid, {})[tap.kind] = tap
            if pid not in self._people:
                self._people[pid] = _participant(peer)
        # Everyone with media: someone without a microphone (or camera) publishes one kind.
        wanted = set(taps)
        for pid in [p for p in self._janus_media if p not in wanted]:
            before = self._janus_media.pop(pid)
            self.on_gone(pid)
            before.stop()
        # In the subscription's order (Janus adds feeds as they come): the join order.
        for pid in [p for p in taps if p in wanted and p not in self._janus_media]:
            # Decoded only while the recorder reads them; a copy that waits for a
            # keyframe asks the publisher for one (Janus passes the PLI on).
            kinds = taps[pid]
            video = DecodedTrack(kinds["video"]) if "video" in kinds else None
            if video is not None:
                self._video_tracks.setdefault(pid, []).append(video)
            media = ParticipantMedia(
                self._people[pid],
                video=video,
                audio=DecodedTrack(kinds["audio"]) if "audio" in kinds else None,
                clocks=_clocks(kinds.values()),
            )
            self._janus_media[pid] = media
            self.on_person(self._people[pid], media)
            if pid in self._marked and self.on_reconnecting is not None:
                self.on_reconnecting(pid, True)

    def _sync(self, slot: int) -> None:
        """Tell ``on_person`` when the person in ``slot`` changes."""
        taps = self._taps.get(slot)
        if taps is None:
            return
        peer = self._peers.get(slot) or {}
        pid = peer.get("id") if isinstance(peer, dict) else None
        if slot in self._shown and self._shown[slot] == pid:
            return
        before = self._shown.get(slot)
        self._shown[slot] = pid
        old = self._media.pop(slot, None)
        if before is not None and before != pid and before not in self._shown.values():
            self.on_gone(before)  # (someone moved to another slot keeps their tile)
        if pid is None:
            if old is not None:
                old.stop()
            return
        participant = _participant(peer)
        video = DecodedTrack(taps[0])
        video.on_shown = lambda shown, pid=str(pid): self._video_shown(pid, shown)
        self._video_tracks.setdefault(str(pid), []).append(video)
        media = ParticipantMedia(
            participant,
            video=video,
            audio=DecodedTrack(taps[1]),
            clocks=_clocks(taps),
        )
        self._media[slot] = media
        self.on_person(participant, media)
        if old is not None:
            old.stop()
        if pid in self._marked and self.on_reconnecting is not None:
            self.on_reconnecting(pid, True)

    def _left(self, pid: str) -> None:
        """``pid`` left the room: their tile goes."""
        self._hidden_video.discard(pid)
        for slot, shown in list(self._shown.items()):
            if shown == pid:
                self._shown[slot] = None
                media = self._media.pop(slot, None)
                if media is not None:
                    media.stop()
        self.on_gone(pid)

    def _video_shown(self, pid: str, shown: bool) -> None:
        """The recorder gave ``pid`` a tile or took it: tell the room server, which
        forwards only the video of people with a tile (audio always)."""
        before = set(self._hidden_video)
        if shown:
            self._hidden_video.discard(pid)
        else:
            self._hidden_video.add(pid)
        if self._hidden_video != before:
            asyncio.ensure_future(self._send_view())

    async def _send_view(self) -> None:
        if self._ws is None or self._ws.closed:
            return
        with contextlib.suppress(Exception):
            await self._ws.send_json(
                {"type": "recorder_view", "hidden": sorted(self._hidden_video)}
            )

    def decoded_video_frames(self) -> dict[str, int]:
        """Video frames decoded per person (participant id) over the whole recording:
        a person without a tile (the active grid) costs no decoding."""
        return {pid: sum(t.decoded for t in tracks) for pid, tracks in self._video_tracks.items()}

    def losses(self) -> dict[str, int]:
        """Video frames lost per person (packets the recorder could not take in)."""
        lost: dict[str, int] = {}
        for mid, tap in self._mid_taps.items():
            peer = self._mids.get(mid)
            if tap.kind == "video" and tap.losses and peer is not None:
                lost[str(peer["id"])] = lost.get(str(peer["id"]), 0) + tap.losses
        for slot, (video, _) in self._taps.items():
            pid = self._shown.get(slot)
            if video.losses and pid is not None:
                lost[pid] = lost.get(pid, 0) + video.losses
        return lost

    async def close(self) -> None:
        self._closing = True
        lost = self.losses()
        if lost:
            log.warning(
                "recorder for room %r: video lost (packets not taken in: a busy machine or "
                "network), each time until the next keyframe: %s",
                self.job.room,
                ", ".join(f"{pid} {n}x" for pid, n in sorted(lost.items())),
            )
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        for media in self._media.values():
            media.stop()
        self._media.clear()
        for media in self._janus_media.values():
            media.stop()
        self._janus_media.clear()
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self._session is not None:
            await self._session.close()


def _participant(peer: dict[str, Any]) -> Participant:
    """The person a ``slot`` / ``subscribe_offer`` entry describes."""
    pid = str(peer.get("id"))
    role_name = str(peer.get("role"))
    role = Role(role_name) if role_name in {str(r) for r in Role} else Role.VISITOR
    return Participant(id=pid, display_name=str(peer.get("name") or pid), role=role)


def _clocks(taps: Iterable[ReceiverTap]) -> dict[str, Any]:
    """Each tapped track's sender clock, by kind: a decoded frame's pts is the tap's
    timestamp, which the publisher's sender reports place on their clock (lip sync)."""
    return {t.kind: t.sender_clock for t in taps if t.sender_clock is not None}


def report(out: IO[str], state: str, **fields: Any) -> None:
    """Write one state line for the room server (flushed at once)."""
    out.write(state_line(state, **fields) + "\n")
    out.flush()


async def _read_commands(stop: asyncio.Event) -> None:
    """Stdin after the job: ``{"type": "stop"}`` lines, or EOF (the server is gone): stop."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line or b'"stop"' in line:
            stop.set()
            return


def _try_lock(path: str) -> Any:
    """The spool file's lock if nobody holds it (the server died), else ``None``."""
    from pathlib import Path

    from ..spool import SpoolLock

    try:
        return SpoolLock(Path(path))
    except Exception:  # noqa: BLE001 - held by the server (the normal case), or gone
        return None


#: Seconds between the worker's ``progress`` reports (its output position).
PROGRESS_EVERY = 0.5
#: Seconds the recorder waits, before its clock starts, for a first picture from
#: everyone already in the room (so the file shows them from its first second).
FIRST_PICTURE_WAIT = 5.0


async def _first_pictures(room: str, people: dict[str, Any]) -> None:
    """Wait (at most :data:`FIRST_PICTURE_WAIT` s) until each person's video has a
    decoded picture: the keyframe the server asked their browser for on our behalf."""
    loop = asyncio.get_running_loop()
    waits = {
        pid: asyncio.ensure_future(media.video.first_picture())
        for pid, media in people.items()
        # (someone without a tile in the active grid is paused: nothing comes for them)
        if media.video is not None
        and hasattr(media.video, "first_picture")
        and not getattr(media.video, "paused", False)
    }
    if not waits:
        return
    began = loop.time()
    _, pending = await asyncio.wait(waits.values(), timeout=FIRST_PICTURE_WAIT)
    for task in pending:
        task.cancel()
    late = sorted(pid for pid, task in waits.items() if task in pending)
    if late:
        log.warning(
            "recorder for room %r: no picture from %s within %.0f s; their tiles show a "
            "placeholder until one comes",
            room,
            ", ".join(late),
            FIRST_PICTURE_WAIT,
        )
    else:
        log.info(
            "recorder for room %r: a picture from all %d people after %.2f s",
            room,
            len(waits),
            loop.time() - began,
        )


async def _progress(recorder: Any, out: IO[str]) -> None:
    """Report how much has been recorded (composited and handed to the encoder)."""
    while True:
        await asyncio.sleep(PROGRESS_EVERY)
        report(out, "progress", position=round(recorder.position, 3))


async def run_job(job: RecordingJob, out: IO[str], *, commands: bool = True) -> int:
    """Record ``job`` until told to stop (stdin), the room ends, or the connection drops.

    Returns the process's exit status: 0 the file is finished, 1 it failed.
    """
    from ..encoding import OutputFormat
    from ..manager import load_plugins
    from ..media import CompositeRecorder
    from ..media.activegrid import GridPolicy

    plugins = load_plugins()
    encoder = plugins.encoder(job.file_format)
    try:
        grid = GridPolicy.from_layout(job.layout)
    except ValueError as exc:
        report(out, "failed", reason=f"recording job: {exc}")
        return 1
    # Unbuffered: what the muxer wrote is in the file (the page cache) at once, so a
    # SIGKILL loses only what the encoder had not written yet (the muxer flushes
    # about every second, see recfw.plugins.encoders).
    output = open(job.spool_path, "r+b", buffering=0)  # noqa: SIM115 - closed below
    recorder = CompositeRecorder(
        encoder, output, OutputFormat(), dict(job.encoder), realtime=job.realtime, grid=grid
    )
    failed: list[str] = []
    stop = asyncio.Event()

    def encoder_failed(exc: BaseException) -> None:
        failed.append(f"encoder: {exc}")
        stop.set()

    recorder.on_failure = encoder_failed

    people: dict[str, Any] = {}

    def on_person(participant: Participant, media: Any) -> None:
        people[participant.id] = media
        recorder.add(media)  # someone already in the composite keeps their tile

    client = RecorderClient(job, on_person, recorder.remove, recorder.set_reconnecting)
    tasks: list[asyncio.Task[Any]] = []
    try:
        await client.connect()
        report(out, "joined")
        await _first_pictures(job.room, people)
        await recorder.start()
        report(out, "recording")
        log.info("recorder for room %r: recording into %s", job.room, job.spool_path)
        if commands:
            tasks.append(asyncio.ensure_future(_read_commands(stop)))
        tasks.append(asyncio.ensure_future(_progress(recorder, out)))
        closed = asyncio.ensure_future(client.closed.wait())
        tasks.append(closed)
        await asyncio.wait(
            {closed, asyncio.ensure_future(stop.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        # If the room server is gone (stdin closed), nobody holds the spool file's lock:
        # hold it while finishing, so a restarted server's uploader waits for the end.
        held = _try_lock(job.spool_path)
        if client.closed.is_set() and not stop.is_set():
            log.warning(
                "recorder for room %r: the room connection closed: %s",
                job.room,
                "; ".join(client.errors) or "closed by the server",
            )
        try:
            stats = await recorder.stop()
            output.close()
        finally:
            if held is not None:
                held.release()
    except Exception as exc:
        log.exception("recorder for room %r failed", job.room)
        with contextlib.suppress(Exception):
            await recorder.stop()
        with contextlib.suppress(Exception):
            output.close()
        report(out, "failed", reason=str(exc) or type(exc).__name__)
        return 1
    finally:
        for task in tasks:
            task.cancel()
        await client.close()
    if failed:
        report(out, "failed", reason="; ".join(failed))
        return 1
    report(
        out,
        "stopped",
        durationSeconds=stats.duration_s,
        videoFrames=stats.video_frames,
        skippedFrames=stats.skipped_frames,
        droppedAudioSeconds=stats.dropped_audio_s,
        maxBehindSeconds=stats.max_behind_s,
        decodedVideoFrames=client.decoded_video_frames(),
    )
    return 0
