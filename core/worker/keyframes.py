"""The recorder asks for a keyframe while a person's video gives it no pictures.

In a Janus room the recorder's video comes from Janus as it is: if the first
keyframe is lost (a busy machine drops packets) or a frame cannot be decoded,
aiortc's decoder gets nothing it can show until the publisher's next keyframe,
and browsers send VP8 keyframes only when asked. :class:`KeyframeWatch` wraps
each video track the recorder reads (:class:`WatchedTrack` notes when a
picture came out) and sends an RTCP PLI through the track's receiver every
:data:`ASK_EVERY` seconds while no picture has come for that long (not more
often: each keyframe of a 720p layer is a burst of packets that a starved
receiver may lose again). Janus
passes it on to the publisher (and picks the simulcast layer's next keyframe).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiortc import MediaStreamTrack
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from ..server.aiortc_tap import send_pli

log = logging.getLogger(__name__)

#: Seconds without a picture after which a keyframe is asked for (and again after as long).
ASK_EVERY = 2.0


class WatchedTrack(MediaStreamTrack):
    """``track``'s frames as they are; :attr:`last` is when the latest came out."""

    kind = "video"

    def __init__(self, track: MediaStreamTrack, receiver: RTCRtpReceiver, name: str):
        super().__init__()
        self.track = track
        self.receiver = receiver
        self.name = name
        self.started = time.monotonic()
        self.last: float | None = None
        self.asked = 0
        self.asked_at = 0.0

    async def recv(self):
        frame = await self.track.recv()
        self.last = time.monotonic()
        return frame


class KeyframeWatch:
    """Keyframe requests for the video tracks the recorder reads (see the module docstring)."""

    def __init__(self, ask_every: float = ASK_EVERY):
        self.ask_every = ask_every
        self.tracks: list[WatchedTrack] = []
        self._task: asyncio.Task[None] | None = None

    def watch(self, track: MediaStreamTrack, receiver: RTCRtpReceiver, name: str) -> WatchedTrack:
        watched = WatchedTrack(track, receiver, name)
        self.tracks.append(watched)
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        return watched

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.ask_every / 2)
            now = time.monotonic()
            for watched in list(self.tracks):
                if watched.readyState != "live":
                    self.tracks.remove(watched)
                    continue
                since = watched.last if watched.last is not None else watched.started
                if now - since < self.ask_every or now - watched.asked_at < self.ask_every:
                    continue
                watched.asked_at = now
                try:
                    if await send_pli(watched.receiver):
                        watched.asked += 1
                        if watched.asked == 1 or watched.asked % 10 == 0:
                            log.info(
                                "recorder: no picture from %s for %.1f s: asked for a keyframe "
                                "(%d times)",
                                watched.name,
                                now - since,
                                watched.asked,
                            )
                except Exception as exc:  # noqa: BLE001 - the transport is going away
                    log.debug("recorder: PLI to %s failed: %r", watched.name, exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
