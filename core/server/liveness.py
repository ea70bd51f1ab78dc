"""Noticing that a participant's media has stopped (issue 9: consent lost, transport gone).

A :class:`MediaWatch` watches one server-side peer connection and calls
``on_lost(cause)`` once, the first time one of these happens:

* the connection fails or closes while nobody here closed it: the ICE transport
  failed after it had connected (aioice gives up when ``Consent to send
  expired``: the other end stopped answering consent checks, RFC 7675), or the
  DTLS transport failed or closed;
* the connection is up but no media frame arrived on any of the participant's
  published tracks for ``timeout`` seconds (``[server] mediaTimeout``).

A transport that fails or closes is reported after ``grace`` seconds (default
:data:`CLOSE_GRACE`), unless the watch was stopped meanwhile: a participant
who leaves closes their connection a moment before their WebSocket, and that
is not media that stopped.

It calls ``on_flowing()`` once, when the first video frame arrives (the first
audio frame for a participant who sends no video). Only public
aiortc API is used (``connectionstatechange``, ``RTCDtlsTransport.state``,
``RTCIceTransport.state``) plus the taps' ``on_frame`` callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

    from .aiortc_tap import ReceiverTap

log = logging.getLogger(__name__)

#: ``[server] mediaTimeout``'s default: seconds without a frame that count as stopped.
MEDIA_TIMEOUT = 5.0
#: Seconds a failed or closed transport waits before it is a loss (see the module doc).
CLOSE_GRACE = 2.0

CAUSE_CONSENT = "ICE consent expired (the connection failed: no answers to consent checks)"
CAUSE_ICE_FAILED = "ICE connectivity checks failed"
CAUSE_DTLS = "the DTLS transport {state}"
CAUSE_CLOSED = "the media connection closed"
CAUSE_SILENT = "no media packets for {seconds:.1f} s while connected"


def transport_cause(pc: RTCPeerConnection, was_connected: bool) -> str:
    """Why ``pc`` failed or closed, from its (bundled) transports' states."""
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls is None:
            continue
        ice = dtls.transport
        if ice.state == "failed":
            return CAUSE_CONSENT if was_connected else CAUSE_ICE_FAILED
        if dtls.state in ("failed", "closed"):
            return CAUSE_DTLS.format(state=dtls.state)
    return CAUSE_CLOSED


class MediaWatch:
    """Watches ``pc`` and the published ``taps`` of one participant (see the module doc).

    ``timeout`` seconds without a frame count as stopped (checked every
    ``timeout / 4`` s, at most every second). :meth:`stop` before closing the
    connection on purpose: a closed connection is then not a loss.
    """

    def __init__(
        self,
        pc: RTCPeerConnection,
        taps: list[ReceiverTap],
        timeout: float,
        on_lost: Callable[[str], None],
        on_flowing: Callable[[], None] | None = None,
        *,
        grace: float = CLOSE_GRACE,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.pc = pc
        self.taps = taps
        self.timeout = timeout
        self.on_lost = on_lost
        self.on_flowing = on_flowing
        self.clock = clock
        self.grace = grace
        self._grace_task: asyncio.Task[None] | None = None
        self.lost: str | None = None
        self.flowing = False
        self.stopped = False
        self._was_connected = False
        self._last_frame: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._flow_kind = "video" if any(t.kind == "video" for t in taps) else "audio"
        for tap in taps:
            tap.on_frame.append(self._video_frame if tap.kind == "video" else self._frame)
        pc.on("connectionstatechange", self._state)
        self._state()

    def _video_frame(self, frame: object) -> None:
        self._frame(frame, "video")

    def _frame(self, _frame: object, kind: str = "audio") -> None:
        self._last_frame = self.clock()
        if not self.flowing and kind == self._flow_kind:
            self.flowing = True
            if self.on_flowing is not None and not self.stopped:
                self.on_flowing()

    def _state(self) -> None:
        if self.stopped or self.lost is not None:
            return
        state = self.pc.connectionState
        if state == "connected":
            self._was_connected = True
            if self._last_frame is None:
                self._last_frame = self.clock()  # the clock starts when media can flow
            if self._task is None and self.taps:
                self._task = asyncio.get_running_loop().create_task(self._check())
        elif state in ("failed", "closed") and self._grace_task is None:
            cause = transport_cause(self.pc, self._was_connected)
            self._grace_task = asyncio.get_running_loop().create_task(self._after_grace(cause))

    async def _after_grace(self, cause: str) -> None:
        await asyncio.sleep(self.grace)
        self._lose(cause)

    async def _check(self) -> None:
        interval = min(1.0, self.timeout / 4)
        while not self.stopped and self.lost is None:
            await asyncio.sleep(interval)
            if self.pc.connectionState != "connected" or self._last_frame is None:
                continue
            silent = self.clock() - self._last_frame
            if silent >= self.timeout:
                self._lose(CAUSE_SILENT.format(seconds=silent))

    def _lose(self, cause: str) -> None:
        if self.lost is not None or self.stopped:
            return
        self.lost = cause
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self.on_lost(cause)

    def stop(self) -> None:
        """Watch no more (the connection is closed on purpose, or replaced)."""
        self.stopped = True
        for tap in self.taps:
            for callback in (self._frame, self._video_frame):
                with contextlib.suppress(ValueError):
                    tap.on_frame.remove(callback)
        for task in (self._task, self._grace_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self._task = None
