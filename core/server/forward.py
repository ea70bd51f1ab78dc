"""Tracks made of a publisher's encoded frames: forwarded to viewers, or decoded for the recorder.

* :class:`ForwardTrack` is what a viewer's slot sends: the encoded frames of
  whichever publisher the slot carries now (switchable, no renegotiation). After
  a switch it starts at a keyframe (and asks the publisher for one), and it keeps
  RTP timestamps continuous across publishers. Nothing is decoded or encoded.
  Each frame keeps its capture time on the publisher's clock (``ntp``), which
  the forwarding sender's RTCP sender reports carry (lip sync at the far end).
* :class:`DecodedTrack` is the recorder's copy: the only place the server
  (or a recorder process) decodes, one decoder per participant and kind, and
  only while the recorder reads it (it decodes on ``recv``). The recorder
  pauses the video of people without a tile (:meth:`DecodedTrack.pause`):
  a paused track is not even subscribed, so it costs nothing per frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from collections import deque
from collections.abc import Callable

from aiortc import MediaStreamTrack
from aiortc.codecs import H264Decoder, OpusDecoder, Vp8Decoder
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError

from .aiortc_tap import STATS, EncodedFrame, ReceiverTap, Subscription

log = logging.getLogger(__name__)

CLOCK = {"video": 90000, "audio": 48000}
#: Re-ask the publisher for a keyframe this often while a viewer waits for one.
KEYFRAME_RETRY = 0.5
#: Put in a paused subscription's queue to wake the ``recv`` waiting on it.
_WAKE = object()


class ForwardTrack(MediaStreamTrack):
    """A viewer's outgoing track: some publisher's encoded frames, or nothing (then it waits).

    Only for senders set up by :func:`recfw.server.aiortc_tap.install_forwarder`.
    """

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.tap: ReceiverTap | None = None
        self.peer_id: str | None = None
        self.codec: str | None = None  # what the viewer's end negotiated; None: any
        self.frames_sent = 0
        self.keyframes_sent = 0
        self._sub: Subscription | None = None
        self._changed = asyncio.Event()
        self._need_keyframe = True
        self._asked_at = 0.0
        self._offset: int | None = None
        self._last_out: int | None = None
        self._last_out_at = 0.0
        self._mismatch_logged = False
        self._held = False

    def set_source(self, tap: ReceiverTap | None, peer_id: str | None) -> None:
        if tap is self.tap:
            self.peer_id = peer_id
            return
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        self.tap = tap
        self.peer_id = peer_id
        self._offset = None
        self._need_keyframe = self.kind == "video"
        if tap is not None and not self._held:
            self._sub = tap.subscribe()
            self._ask_keyframe()
        self._changed.set()

    @property
    def held(self) -> bool:
        return self._held

    def hold(self, held: bool) -> None:
        """Forward nothing (``True``) while keeping the slot's source, or forward again
        (from a keyframe, asked for now; timestamps go on by the wall clock). For a
        recorder that does not show this person's video (the active grid)."""
        if held == self._held:
            return
        self._held = held
        if held:
            if self._sub is not None:
                self._sub.close()
                self._sub = None
        elif self.tap is not None and self._sub is None:
            self._sub = self.tap.subscribe()
            self._offset = None
            self._need_keyframe = self.kind == "video"
            self._ask_keyframe()
        self._changed.set()

    def keyframe_requested(self) -> None:
        """The viewer sent a PLI/FIR: pass it on to the publisher."""
        if self.tap is not None:
            self.tap.request_keyframe()

    def _ask_keyframe(self) -> None:
        self._asked_at = time.monotonic()
        if self.tap is not None:
            self.tap.request_keyframe()

    def _rebase(self, timestamp: int) -> int:
        clock = CLOCK[self.kind]
        if self._offset is None:
            if self._last_out is None:
                start = 0
            else:  # continue where the previous publisher stopped, by the wall clock
                elapsed = time.monotonic() - self._last_out_at
                start = self._last_out + max(clock // 50, round(elapsed * clock))
            self._offset = start - timestamp
        out = (timestamp + self._offset) & 0xFFFFFFFF
        self._last_out = out
        self._last_out_at = time.monotonic()
        return out

    async def recv(self) -> EncodedFrame:  # type: ignore[override]  # not a Frame: forwarded
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            sub = self._sub
            if sub is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            self._changed.clear()
            get = asyncio.ensure_future(sub.get())
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                done, _ = await asyncio.wait({get, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
            if get not in done:
                get.cancel()
                continue
            frame = get.result()
            if sub is not self._sub:
                continue
            if frame is None:  # the publisher's track ended
                sub.close()
                self._sub = None
                self.tap = None
                continue
            if self.codec is not None and frame.codec != self.codec:
                if not self._mismatch_logged:
                    self._mismatch_logged = True
                    log.warning(
                        "%s from %s is %s but the viewer takes %s: not forwarded",
                        self.kind,
                        self.peer_id,
                        frame.codec,
                        self.codec,
                    )
                continue
            if self.kind == "video":
                if sub.need_keyframe:  # the subscription overflowed
                    sub.need_keyframe = False
                    self._need_keyframe = True
                if self._need_keyframe:
                    if not frame.keyframe:
                        if time.monotonic() - self._asked_at > KEYFRAME_RETRY:
                            self._ask_keyframe()
                        continue
                    self._need_keyframe = False
                if frame.keyframe:
                    self.keyframes_sent += 1
            self.frames_sent += 1
            return EncodedFrame(
                frame.codec, frame.data, self._rebase(frame.timestamp), frame.keyframe, frame.ntp
            )

    def stop(self) -> None:
        super().stop()
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        self.tap = None
        self._changed.set()


_DECODERS: dict[str, Callable[[], Decoder]] = {
    "vp8": Vp8Decoder,
    "h264": H264Decoder,
    "opus": OpusDecoder,
}


class DecodedTrack(MediaStreamTrack):
    """One participant's decoded audio or video, for the recorder only.

    Frames are decoded when :meth:`recv` asks for them (video in a worker
    thread), so an unread track decodes nothing and its queue stays bounded.
    :meth:`pause` stops taking frames at all (``recv`` waits); :meth:`resume`
    takes them again from the next keyframe (one is asked for).
    The frames are what aiortc's own receiver would have produced (``pts`` in
    the RTP clock from the first frame, ``time_base`` 1/90000 or 1/48000).
    """

    def __init__(self, tap: ReceiverTap):
        super().__init__()
        self.kind = tap.kind
        self.tap = tap
        self._sub: Subscription | None = tap.subscribe()
        self._decoder: Decoder | None = None
        self._codec: str | None = None
        self._ready: deque = deque()
        self._sized = False
        self._paused = False
        self._resumed = asyncio.Event()
        self.time_base = fractions.Fraction(1, CLOCK[self.kind])
        #: Frames this track decoded (tests and benchmarks read it).
        self.decoded = 0
        #: Called with ``False`` on :meth:`pause` and ``True`` on :meth:`resume` (a
        #: recorder process tells the room server whose video it shows).
        self.on_shown: Callable[[bool], None] | None = None
        if self.kind == "video":
            tap.request_keyframe()

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Take no more frames (nothing is queued or decoded) until :meth:`resume`."""
        if self._paused or self._sub is None:
            return
        self._paused = True
        self._resumed.clear()
        sub, self._sub = self._sub, None
        sub.close()
        if sub.queue.full():
            sub.queue.get_nowait()
        sub.queue.put_nowait(_WAKE)  # type: ignore[arg-type]  # wakes a waiting recv()
        self._ready.clear()
        if self.on_shown is not None:
            self.on_shown(False)

    def resume(self) -> None:
        """Take frames again, from the next keyframe (asked for now)."""
        if not self._paused or self.readyState != "live":
            return
        self._paused = False
        self._sub = self.tap.subscribe()  # a video subscription starts at a keyframe
        if self.on_shown is not None:
            self.on_shown(True)  # the room server forwards again (and asks for a keyframe)
        if self.kind == "video":
            self.tap.request_keyframe()
        self._resumed.set()

    async def first_picture(self) -> None:
        """Wait until a picture is decoded; it is kept for the next :meth:`recv`."""
        if not self._ready:
            self._ready.appendleft(await self.recv())

    def _decode(self, frame: EncodedFrame) -> list:
        if self._decoder is None or frame.codec != self._codec:
            self._decoder = _DECODERS[frame.codec]()
            self._codec = frame.codec
            STATS.decoders_created[frame.codec] = STATS.decoders_created.get(frame.codec, 0) + 1
        return self._decoder.decode(JitterFrame(frame.data, frame.timestamp))

    async def recv(self):
        while not self._ready:
            if self._paused and self.readyState == "live":
                await self._resumed.wait()
                continue
            sub = self._sub
            if self.readyState != "live" or sub is None:
                raise MediaStreamError
            frame = await sub.get()
            if frame is _WAKE or sub is not self._sub:
                continue  # paused (or paused and resumed) meanwhile
            if frame is None:
                self.stop()
                raise MediaStreamError
            if self.kind == "video":
                if sub.need_keyframe:
                    if not frame.keyframe:
                        self.tap.request_keyframe()
                        continue
                    sub.need_keyframe = False
                loop = asyncio.get_running_loop()
                try:
                    frames = await loop.run_in_executor(None, self._decode, frame)
                    if frames and not self._sized:
                        self._sized = True
                        size = (frames[0].width, frames[0].height)
                        STATS.decoded_sizes.append(size)
                        log.info("the recorder decodes %s video at %dx%d", frame.codec, *size)
                except Exception as exc:  # a corrupt frame: wait for the next keyframe
                    log.warning("decoding %s for the recorder failed: %s", frame.codec, exc)
                    sub.need_keyframe = True
                    self.tap.request_keyframe()
                    continue
            else:
                try:
                    frames = self._decode(frame)
                except Exception as exc:
                    log.warning("decoding %s for the recorder failed: %s", frame.codec, exc)
                    continue
            self.decoded += len(frames)
            STATS.frames_decoded[self.kind] = STATS.frames_decoded.get(self.kind, 0) + len(frames)
            self._ready.extend(frames)
        return self._ready.popleft()

    def stop(self) -> None:
        super().stop()
        if self._sub is not None:
            self._sub.close()
            with contextlib.suppress(Exception):
                self._sub._offer(None)  # wakes a recv() that is waiting
            self._sub = None
        self._resumed.set()  # wakes a paused recv()
        self._ready.clear()
