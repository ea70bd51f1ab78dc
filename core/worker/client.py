"""The worker's end: join a room as ``recorder``, subscribe to everyone, record.

The recorder is an ordinary WebRTC participant of the forwarding room server
with two differences: it joins with the one-time recorder token of its job
(role ``recorder``: never a tile, never counted as a person), and it publishes
nothing. Its offer has ``slots`` pairs of ``recvonly`` video + audio m-lines;
the server forwards each person's encoded media into a slot and says who is in
which slot (``slot`` messages). The worker decodes what it receives itself
(aiortc's receivers), and each slot's person is a participant of the
:class:`~recfw.media.CompositeRecorder` that writes the spool file.

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
from collections.abc import Callable
from typing import IO, Any

import aiohttp
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

from ..errors import RecfwError
from ..rooms import Participant, Role
from ..server.client import parse_room_url
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

    ``on_person(participant, media)`` is called when a person appears in a
    slot, or their tracks change (a reconnection: theirs or ours);
    ``on_gone(participant_id)`` when they are in no slot any more;
    ``on_reconnecting(participant_id, bool)`` when their media stops or flows
    again. The media are fresh subscriptions to the slot's received tracks, so
    stopping them leaves the slot's tracks running.
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
        self._relay = MediaRelay()
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._welcome = asyncio.Event()
        self._connected = asyncio.Event()
        self._tracks: dict[int, dict[str, Any]] = {}
        self._peers: dict[int, dict[str, Any] | None] = {}
        self._shown: dict[int, str | None] = {}

    async def connect(self) -> None:
        if self.url.is_loopback:
            restrict_host_addresses(["127.0.0.1"])
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
            self._marked.update(str(pid) for pid in message.get("reconnecting") or ())
            self._slots = int(message.get("slots", 0))
            await self._negotiate(self._slots)
        elif kind == "answer":
            assert self.pc is not None
            sdp = filter_sdp(message["sdp"], self.url.is_loopback)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
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
        self._tracks.clear()
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

        @pc.on("track")
        def _track(track) -> None:
            if pc is not self.pc:
                return
            for index, transceiver in enumerate(pc.getTransceivers()):
                if transceiver.receiver.track is track and index >= 2:
                    slot = (index - 2) // 2
                    self._tracks.setdefault(slot, {})[track.kind] = track
                    self._sync(slot)

        pc.addTransceiver("audio", direction="inactive")
        pc.addTransceiver("video", direction="inactive")
        for _ in range(slots):
            pc.addTransceiver("video", direction="recvonly")
            pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        assert self._ws is not None
        offer = {"type": "offer", "sdp": filter_sdp(pc.localDescription.sdp, self.url.is_loopback)}
        if reason is not None:
            offer["reason"] = reason
        await self._ws.send_json(offer)

    def _sync(self, slot: int) -> None:
        """Tell ``on_person`` when the person in ``slot`` (with both tracks known) changes."""
        tracks = self._tracks.get(slot, {})
        if "video" not in tracks or "audio" not in tracks:
            return
        peer = self._peers.get(slot) or {}
        pid = peer.get("id") if isinstance(peer, dict) else None
        if slot in self._shown and self._shown[slot] == pid:
            return
        before = self._shown.get(slot)
        self._shown[slot] = pid
        if before is not None and before != pid and before not in self._shown.values():
            self.on_gone(before)  # (someone moved to another slot keeps their tile)
        if pid is None:
            return
        role_name = str(peer.get("role"))
        role = Role(role_name) if role_name in {str(r) for r in Role} else Role.VISITOR
        participant = Participant(id=pid, display_name=str(peer.get("name") or pid), role=role)
        media = ParticipantMedia(
            participant,
            video=self._relay.subscribe(tracks["video"]),
            audio=self._relay.subscribe(tracks["audio"]),
        )
        self.on_person(participant, media)
        if pid in self._marked and self.on_reconnecting is not None:
            self.on_reconnecting(pid, True)

    def _left(self, pid: str) -> None:
        """``pid`` left the room: their tile goes."""
        for slot, shown in list(self._shown.items()):
            if shown == pid:
                self._shown[slot] = None
        self.on_gone(pid)

    async def close(self) -> None:
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
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

    plugins = load_plugins()
    encoder = plugins.encoder(job.file_format)
    # Unbuffered: what the muxer wrote is in the file (the page cache) at once, so a
    # SIGKILL loses only what the encoder had not written yet (the muxer flushes
    # about every second, see recfw.plugins.encoders).
    output = open(job.spool_path, "r+b", buffering=0)  # noqa: SIM115 - closed below
    recorder = CompositeRecorder(
        encoder, output, OutputFormat(), dict(job.encoder), realtime=job.realtime
    )
    failed: list[str] = []
    stop = asyncio.Event()

    def encoder_failed(exc: BaseException) -> None:
        failed.append(f"encoder: {exc}")
        stop.set()

    recorder.on_failure = encoder_failed

    def on_person(participant: Participant, media: Any) -> None:
        recorder.add(media)  # someone already in the composite keeps their tile

    client = RecorderClient(job, on_person, recorder.remove, recorder.set_reconnecting)
    tasks: list[asyncio.Task[Any]] = []
    try:
        await client.connect()
        report(out, "joined")
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
    )
    return 0
