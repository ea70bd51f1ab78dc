"""CompositeRecorder: participants' tracks in, one composite file out.

One clock per recording. The output loop produces frame ``n`` (time ``n/fps``)
and the audio samples ``[n*rate/fps, (n+1)*rate/fps)`` together, so the output
is constant-rate, strictly monotonic and in sync by construction; the inputs
are placed on the timeline by :mod:`recfw.media.timeline`.

``realtime=True``: the clock is the wall clock and frame ``n`` is produced
:data:`LATENCY` seconds after its time (for live WebRTC tracks).
``realtime=False``: a virtual clock that advances as soon as every present
track has delivered media past the next frame (for non-realtime sources in
tests and benchmarks). :meth:`CompositeRecorder.wait_until` lets a caller act
at an exact point of the timeline in either mode.

Compositing and encoding run in one worker thread, so the event loop (and the
WebRTC stack on it) is never blocked by the encoder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import av
import numpy as np

from ..encoding import EncodedStream, Encoder, OutputFormat
from .compositor import Compositor, Tile
from .mixer import Mixer
from .timeline import AudioTrackBuffer, TimingPolicy, VideoTrackBuffer

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack

    from ..sources import ParticipantMedia

log = logging.getLogger(__name__)

#: Live recordings: how far behind the wall clock the output runs (jitter room).
LATENCY = 0.3
#: Virtual clock: how far ahead of the output a track is read.
READ_AHEAD = 0.5
#: Virtual clock: how long (wall seconds) to wait for a silent track before going on.
STALL_TIMEOUT = 2.0
#: Frames handed to the worker thread and not yet encoded, at most.
MAX_PENDING = 15


def receive_delay(track: MediaStreamTrack) -> float:
    """Seconds a live track's frames arrive later than they were captured, where known.

    aiortc's receiver releases audio only when its jitter buffer holds 4
    packets (``JitterBuffer(prefetch=4)``): three 20 ms packets later than
    video, whose frames are released as soon as they are complete.
    """
    if track.kind == "audio" and type(track).__name__ in ("RemoteStreamTrack", "DecodedTrack"):
        return AIORTC_AUDIO_PREFETCH_DELAY
    return 0.0


#: See :func:`receive_delay`.
AIORTC_AUDIO_PREFETCH_DELAY = 0.060


@dataclass
class RecordingStats:
    """What was recorded: the output's duration, frame and sample counts and size."""

    duration_s: float
    video_frames: int
    audio_samples: int
    width: int
    height: int


@dataclass
class _Participant:
    media: ParticipantMedia
    joined_at: float
    video: VideoTrackBuffer | None
    audio: AudioTrackBuffer | None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: Live mode: when they left on the recording's clock. The tile stays for the
    #: frames before that instant that are still to be made (the latency window).
    left_at: float | None = None


class CompositeRecorder:
    """Records the participants added to it as one 720p grid with mixed audio.

    ::

        rec = CompositeRecorder(encoder, open(path, "wb"), OutputFormat(), {}, realtime=True)
        rec.add(media)              # before or after start()
        await rec.start()
        ...
        rec.remove("p1")
        stats = await rec.stop()    # flushes and closes the encoded stream

    ``output`` is handed to ``encoder.open`` and never closed here.
    """

    def __init__(
        self,
        encoder: Encoder,
        output: BinaryIO,
        fmt: OutputFormat = OutputFormat(),  # noqa: B008 - frozen dataclass
        options: Mapping[str, Any] = {},  # noqa: B006 - never mutated
        *,
        realtime: bool = True,
    ):
        self.encoder = encoder
        self.output = output
        #: Called (on the event loop) with the exception when the output loop dies
        #: mid-recording, so the owner can stop at once instead of at the next stop().
        self.on_failure: Callable[[BaseException], None] | None = None
        self.fmt = fmt
        self.options = dict(options)
        self.realtime = realtime
        self.policy = TimingPolicy(realtime=realtime)
        self._people: dict[str, _Participant] = {}
        self._frames = 0  # next output frame index
        self._samples = 0  # audio samples written
        self._t0: float | None = None
        self._started = asyncio.Event()
        self._stopping = False
        self._end_frame: int | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._data = asyncio.Event()  # a track delivered something
        self._stop_requested = asyncio.Event()
        self._tick = asyncio.Event()  # the output advanced
        self._barriers: list[tuple[float, asyncio.Future[None]]] = []
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="recfw-encode")
        self._pending: deque[asyncio.Future[None]] = deque()
        self._stream: EncodedStream | None = None
        self._compositor = Compositor(fmt.width, fmt.height)
        self._channels = 1 if fmt.audio_layout == "mono" else 2
        self._mixer = Mixer(fmt.sample_rate, self._channels)
        self._stats: RecordingStats | None = None
        # Output frame n shows the input frame nearest to n/fps (not the latest
        # before it): input frames up to just under half a frame later count.
        self._nearest = 0.5 / fmt.fps - 1e-4

    # --- the clock -----------------------------------------------------------

    @property
    def position(self) -> float:
        """Seconds of output decided so far (the time of the next output frame)."""
        return self._frames / self.fmt.fps

    @property
    def tiles(self) -> list[str]:
        """Participant ids in the composite (not leaving), in grid order."""
        return [pid for pid, e in self._people.items() if e.left_at is None]

    def now(self) -> float:
        """The recording's clock: wall seconds since start, or the virtual position."""
        if not self.realtime:
            return self.position
        if self._t0 is None:
            return 0.0
        return time.monotonic() - self._t0

    def _sample_index(self, frame: int) -> int:
        return frame * self.fmt.sample_rate // self.fmt.fps

    async def wait_until(self, t: float) -> None:
        """Return when the output reaches ``t`` seconds (before frame ``ceil(t*fps)`` is made).

        Whatever the caller does right after (``add``/``remove``) takes effect
        exactly at that frame, also with the virtual clock.
        """
        if self._stopping:
            raise RuntimeError("the recording is stopping")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._barriers.append((t, fut))
        await fut

    # --- participants ----------------------------------------------------------

    def add(self, media: ParticipantMedia) -> None:
        """Give ``media``'s participant a tile and start reading their tracks."""
        p = media.participant
        if not p.is_person:
            log.debug("%r (role %s) is not a person: no tile", p.id, p.role)
            return
        if self._stopping:
            log.warning("participant %r added while the recording stops: ignored", p.id)
            return
        if p.id in self._people:
            self._drop(p.id)
        now = self.now()
        video = VideoTrackBuffer(self.policy, f"{p.id}/video") if media.video else None
        audio = (
            AudioTrackBuffer(
                self.policy, f"{p.id}/audio", self.fmt.sample_rate, self.fmt.audio_layout
            )
            if media.audio
            else None
        )
        entry = _Participant(media, now, video, audio)
        loop = asyncio.get_running_loop()
        for track, buf in ((media.video, video), (media.audio, audio)):
            if track is not None and buf is not None:
                entry.tasks.append(loop.create_task(self._pull(entry, track, buf)))
        self._people[p.id] = entry
        log.info("participant %r joins the composite at %.3f s", p.id, now)

    def remove(self, participant_id: str) -> None:
        """Take the participant's tile away and stop reading their tracks.

        Live, the output runs :data:`LATENCY` behind the clock: the tile stays in
        the frames before this instant that are still to be made, so a leaving
        participant's last moments (and the end of a recording) are not cut.
        """
        entry = self._people.get(participant_id)
        if entry is None or entry.left_at is not None:
            return
        if not self.realtime:
            self._drop(participant_id)
            return
        entry.left_at = self.now()
        for task in entry.tasks:
            task.cancel()
        self._data.set()
        log.info("participant %r leaves the composite at %.3f s", participant_id, entry.left_at)

    def _drop(self, participant_id: str) -> None:
        entry = self._people.pop(participant_id, None)
        if entry is None:
            return
        for task in entry.tasks:
            task.cancel()
        self._data.set()
        if entry.left_at is None:
            log.info("participant %r leaves the composite at %.3f s", participant_id, self.now())

    async def _pull(
        self,
        entry: _Participant,
        track: MediaStreamTrack,
        buf: VideoTrackBuffer | AudioTrackBuffer,
    ) -> None:
        from aiortc.mediastreams import MediaStreamError

        await self._started.wait()
        delay = receive_delay(track) if self.realtime else 0.0
        try:
            while not self._stopping:
                while not self.realtime and buf.horizon > self.position + READ_AHEAD:
                    tick = self._tick
                    await tick.wait()
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    break
                now = self.now() - delay
                anchor = now if self.realtime else max(entry.joined_at, now)
                buf.push(frame, now, anchor)  # type: ignore[arg-type]
                self._data.set()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reading %s failed; the track is treated as ended", buf.anchor.name)
        finally:
            buf.ended = True
            self._data.set()

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Open the encoded stream and start the clock and the output loop."""
        if self._loop_task is not None:
            raise RuntimeError("the recording was already started")
        loop = asyncio.get_running_loop()
        try:
            self._stream = await loop.run_in_executor(
                self._executor, self.encoder.open, self.output, self.fmt, self.options
            )
        except Exception:
            self._abandon()
            raise
        self._t0 = time.monotonic()
        self._started.set()
        self._loop_task = loop.create_task(self._run())
        self._loop_task.add_done_callback(self._loop_done)

    def _loop_done(self, task: asyncio.Task[None]) -> None:
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            # Reported now; stop() raises it again after closing the stream.
            log.error("the recording's output loop failed: %r", exc)
            if self.on_failure is not None:
                self.on_failure(exc)

    async def stop(self) -> RecordingStats:
        """Stop the clock, encode what is left, close the stream; return what was recorded."""
        if self._stats is not None:
            return self._stats
        if self._loop_task is None:
            self._abandon()
            raise RuntimeError("the recording was never started")
        self._stopping = True
        if self.realtime and self._end_frame is None:
            self._end_frame = max(self._frames, round(self.now() * self.fmt.fps))
        self._data.set()
        self._stop_requested.set()
        self._wake()
        for _, fut in self._barriers:
            if not fut.done():
                fut.cancel()
        error: BaseException | None = None
        try:
            await self._loop_task
        except Exception as exc:  # noqa: BLE001 - reported after the stream is closed
            error = exc
        for entry in list(self._people.values()):
            for task in entry.tasks:
                task.cancel()
        try:
            while self._pending:
                await self._pending.popleft()
        except Exception as exc:  # noqa: BLE001
            error = error or exc
        loop = asyncio.get_running_loop()
        try:
            if self._stream is not None:
                await loop.run_in_executor(self._executor, self._stream.close)
        finally:
            self._executor.shutdown(wait=False)
        if error is not None:
            raise error
        self._stats = RecordingStats(
            duration_s=self._frames / self.fmt.fps,
            video_frames=self._frames,
            audio_samples=self._samples,
            width=self.fmt.width,
            height=self.fmt.height,
        )
        log.info("recording stopped: %s", self._stats)
        return self._stats

    def _abandon(self) -> None:
        """Stop reading every track and free the worker thread (nothing was recorded)."""
        self._stopping = True
        for entry in self._people.values():
            for task in entry.tasks:
                task.cancel()
        self._executor.shutdown(wait=False)

    # --- the output loop ------------------------------------------------------

    def _wake(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    async def _release_barriers(self) -> None:
        t = self.position + 1e-9
        due = [b for b in self._barriers if b[0] <= t]
        if not due:
            return
        self._barriers = [b for b in self._barriers if b[0] > t]
        for _, fut in due:
            if not fut.done():
                fut.set_result(None)
        # Let the waiters run (and add/remove participants) before this frame is made.
        for _ in range(3):
            await asyncio.sleep(0)

    def _ready(self) -> bool:
        t = self.position
        s1 = self._sample_index(self._frames + 1)
        for entry in self._people.values():
            if entry.video is not None and not entry.video.ready(t + self._nearest):
                return False
            if entry.audio is not None and not entry.audio.ready(s1):
                return False
        return True

    async def _wait_for_inputs(self) -> None:
        deadline = time.monotonic() + STALL_TIMEOUT
        while not self._stopping and not self._ready():
            self._data.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                late = [pid for pid, e in self._people.items() if not self._ready_one(e)]
                log.warning("no media from %s for %.1f s; going on", late, STALL_TIMEOUT)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._data.wait(), left)

    def _ready_one(self, entry: _Participant) -> bool:
        s1 = self._sample_index(self._frames + 1)
        return (entry.video is None or entry.video.ready(self.position + self._nearest)) and (
            entry.audio is None or entry.audio.ready(s1)
        )

    async def _run(self) -> None:
        assert self._t0 is not None
        while True:
            await self._release_barriers()
            if self._stopping:
                if not self.realtime or self._end_frame is None:
                    break
                if self._frames >= self._end_frame:
                    break
            elif self.realtime:
                due = self._t0 + self.position + LATENCY
                delay = due - time.monotonic()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        # Sleeps until the frame is due; stop() wakes it early.
                        await asyncio.wait_for(self._stop_requested.wait(), delay)
                    continue
            else:
                await self._wait_for_inputs()
                if self._stopping:
                    continue
            await self._emit()

    async def _emit(self) -> None:
        n = self._frames
        t = n / self.fmt.fps
        s0, s1 = self._sample_index(n), self._sample_index(n + 1)
        for pid in [p for p, e in self._people.items() if e.left_at is not None and e.left_at <= t]:
            self._drop(pid)
        tiles = [
            Tile(pid, e.video.picture_at(t + self._nearest) if e.video is not None else None)
            for pid, e in self._people.items()
        ]
        tracks = [e.audio.read(s0, s1) for e in self._people.values() if e.audio is not None]
        pcm = self._mixer.mix(tracks, s1 - s0)
        self._frames = n + 1
        self._samples = s1
        self._wake()
        loop = asyncio.get_running_loop()
        self._pending.append(loop.run_in_executor(self._executor, self._encode, n, tiles, pcm, s0))
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()
        if len(self._pending) > MAX_PENDING:
            await self._pending.popleft()
        await asyncio.sleep(0)

    def _encode(self, n: int, tiles: list[Tile], pcm: np.ndarray, s0: int) -> None:
        """Worker thread: composite frame ``n`` and encode it with its audio."""
        assert self._stream is not None
        frame = self._compositor.render(tiles)
        frame.pts = n
        frame.time_base = self.fmt.video_time_base
        self._stream.write_video(frame)
        if len(pcm):
            audio = av.AudioFrame.from_ndarray(
                pcm.reshape(1, -1), format="s16", layout=self.fmt.audio_layout
            )
            audio.sample_rate = self.fmt.sample_rate
            audio.pts = s0
            audio.time_base = self.fmt.audio_time_base
            self._stream.write_audio(audio)
