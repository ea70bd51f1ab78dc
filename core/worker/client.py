"""The worker's end: join a room as ``recorder``, subscribe to everyone, record.

The recorder is an ordinary WebRTC participant of the forwarding room server
with two differences: it joins with the one-time recorder token of its job
(role ``recorder``: never a tile, never counted as a person), and it publishes
nothing. Its offer has ``slots`` pairs of ``recvonly`` video + audio m-lines;
the server forwards each person's encoded media into a slot and says who is in
which slot (``slot`` messages). The worker decodes what it receives itself
(aiortc's receivers), and each slot's person is a participant of the
:class:`~recfw.media.CompositeRecorder` that writes the spool file.

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
from ..server.aiortc_tap import SenderClock, tap_sender_reports
from ..server.client import parse_room_url
from ..server.ice import filter_sdp, restrict_host_addresses
from ..sources import ParticipantMedia
from .job import RecordingJob, state_line

log = logging.getLogger(__name__)

#: Seconds to join and get the media connection up.
CONNECT_TIMEOUT = 20.0


class RecorderClient:
    """The recorder's signalling + media connection to one room.

    ``on_person(slot, media | None)`` is called when a slot's person changes
    (``None``: the slot is empty now); the media are fresh subscriptions to the
    slot's received tracks, so stopping them leaves the slot's tracks running.
    The media carry the slot's :class:`~recfw.server.aiortc_tap.SenderClock` s:
    the server forwards each publisher's RTCP sender reports (their capture
    clock), by which the recorder lines each person's video up with their audio.
    """

    def __init__(self, job: RecordingJob, on_person: Callable[[int, Any, Any], None]):
        self.job = job
        self.url = parse_room_url(f"{job.base_url.rstrip('/')}/{job.room}")
        self.on_person = on_person
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
        #: Each slot's tracks on their publisher's clock (the server forwards the
        #: publisher's RTCP sender reports): the recorder's lip sync.
        self._clocks: dict[int, dict[str, SenderClock]] = {}
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
            await self._negotiate(int(message.get("slots", 0)))
        elif kind == "answer":
            assert self.pc is not None
            sdp = filter_sdp(message["sdp"], self.url.is_loopback)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        elif kind == "slot":
            self._peers[int(message["index"])] = message.get("peer")
            self._sync(int(message["index"]))
        elif kind == "error":
            self.errors.append(str(message.get("message")))
            if message.get("command") == "join" or message.get("command") is None:
                raise RecfwError(str(message.get("message")))

    async def _negotiate(self, slots: int) -> None:
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

        @pc.on("track")
        def _track(track) -> None:
            for index, transceiver in enumerate(pc.getTransceivers()):
                if transceiver.receiver.track is track and index >= 2:
                    slot = (index - 2) // 2
                    self._tracks.setdefault(slot, {})[track.kind] = track
                    self._clocks.setdefault(slot, {})[track.kind] = tap_sender_reports(
                        transceiver.receiver, track.kind
                    )
                    self._sync(slot)

        pc.addTransceiver("audio", direction="inactive")
        pc.addTransceiver("video", direction="inactive")
        for _ in range(slots):
            pc.addTransceiver("video", direction="recvonly")
            pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        assert self._ws is not None
        await self._ws.send_json(
            {"type": "offer", "sdp": filter_sdp(pc.localDescription.sdp, self.url.is_loopback)}
        )

    def _sync(self, slot: int) -> None:
        """Tell ``on_person`` when the person in ``slot`` (with both tracks known) changes."""
        tracks = self._tracks.get(slot, {})
        if "video" not in tracks or "audio" not in tracks:
            return
        peer = self._peers.get(slot) or {}
        pid = peer.get("id") if isinstance(peer, dict) else None
        if self._shown.get(slot) == pid:
            return
        self._shown[slot] = pid
        if pid is None:
            self.on_person(slot, None, None)
            return
        role_name = str(peer.get("role"))
        role = Role(role_name) if role_name in {str(r) for r in Role} else Role.VISITOR
        participant = Participant(id=pid, display_name=str(peer.get("name") or pid), role=role)
        media = ParticipantMedia(
            participant,
            video=self._relay.subscribe(tracks["video"]),
            audio=self._relay.subscribe(tracks["audio"]),
            clocks=dict(self._clocks.get(slot, {})),
        )
        self.on_person(slot, participant, media)

    async def close(self) -> None:
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
    people: dict[int, str] = {}

    def on_person(slot: int, participant: Participant | None, media: Any) -> None:
        gone = people.pop(slot, None)
        if gone is not None:
            recorder.remove(gone)
        if participant is not None:
            people[slot] = participant.id
            recorder.add(media)

    client = RecorderClient(job, on_person)
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
