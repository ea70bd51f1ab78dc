"""The one module that reaches into aiortc's private internals (pinned: aiortc 1.16.0).

aiortc has no public API for forwarding media without decoding it. This module
adds the three things the room server needs, on top of aiortc 1.16.0 exactly:

* :func:`tap_receiver`: the encoded frames of an :class:`RTCRtpReceiver`, as its
  jitter buffer completes them, *before* aiortc's decoder. The receiver's decoder
  queue is replaced by :class:`_TapQueue`, which hands each frame to the tap and
  never to the decoder thread: a tapped receiver decodes nothing.
* :func:`install_forwarder`: an :class:`RTCRtpSender` that sends encoded frames
  as they are (``pack`` only). Its encoder is :class:`ForwardingPacker`, which
  refuses to encode, so a forwarding sender can never fall back to transcoding.
  Keyframe requests (RTCP PLI/FIR) the sender receives go to a callback.
* :func:`send_pli`: an RTCP picture loss indication to a publisher.
* :func:`tap_sender_reports`: the RTCP sender reports (NTP <-> RTP timestamp) a
  receiver gets, as a :class:`SenderClock` that gives each frame's time on the
  sender's clock (lip sync). A tapped receiver stamps each encoded frame with it
  (:attr:`EncodedFrame.ntp`), and a forwarding sender's own sender reports carry
  the publisher's clock, not the server's (:func:`translate_sender_reports`).
  :func:`report_capture_times` does the same for an aiortc sender that encodes.

:func:`check_aiortc` runs at import and raises :class:`AiortcTapError`, naming
the installed and the pinned version, when aiortc is not the pinned version or
its internals look different: the server fails at start, never silently.

RTCP sender reports arrive in ``RTCRtpReceiver._handle_rtcp_packet``
(``RtcpSrPacket.sender_info.ntp_timestamp`` / ``rtp_timestamp``); the timestamps
of the frames given to the tap (and the ``pts`` of aiortc's decoded frames) are
the RTP timestamps minus the receiver's first one (``__timestamp_mapper._origin``).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import aiortc
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpreceiver import RTCRtpReceiver, TimestampMapper
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtcpRrPacket, RtcpSenderInfo, RtcpSrPacket, RtpPacket

from ..errors import RecfwError

log = logging.getLogger(__name__)

#: The aiortc version this module is written against (pinned in pyproject.toml).
AIORTC_PINNED = "1.16.0"
#: Seconds between two keyframe requests to the same publisher.
PLI_INTERVAL = 0.3
#: Seconds (of the sender's RTP clock) a video receiver that skips losses waits for a
#: missing packet (a retransmission) before it gives the frame up (see
#: :class:`SkippingJitterBuffer`).
MAX_HOLE_WAIT = 0.25


class AiortcTapError(RecfwError):
    """aiortc is not the version (or shape) the forwarding code was written for."""


def _names(function: object) -> set[str]:
    code = getattr(function, "__code__", None)
    return set(code.co_names) if code is not None else set()


def _sender_report_internals() -> dict[str, tuple[object, str]]:
    """What :func:`tap_sender_reports` and :func:`translate_sender_reports` rely on."""
    return {
        "RTCRtpReceiver._handle_rtcp_packet": (
            getattr(RTCRtpReceiver, "_handle_rtcp_packet", None),
            "sender_info",
        ),
        "RTCDtlsTransport._handle_rtcp_data": (
            getattr(RTCDtlsTransport, "_handle_rtcp_data", None),
            "_handle_rtcp_packet",
        ),
        "RTCRtpReceiver._handle_rtp_packet (timestamps)": (
            getattr(RTCRtpReceiver, "_handle_rtp_packet", None),
            "_RTCRtpReceiver__timestamp_mapper",
        ),
        "TimestampMapper.map": (getattr(TimestampMapper, "map", None), "_origin"),
        "RTCRtpSender._run_rtcp": (getattr(RTCRtpSender, "_run_rtcp", None), "_send_rtcp"),
        "RTCRtpSender._run_rtcp (reports)": (
            getattr(RTCRtpSender, "_run_rtcp", None),
            "_RTCRtpSender__rtp_timestamp",
        ),
        "RTCRtpSender._run_rtp": (
            getattr(RTCRtpSender, "_run_rtp", None),
            "_RTCRtpSender__rtp_timestamp",
        ),
        "RTCRtpSender._run_rtp (frames)": (
            getattr(RTCRtpSender, "_run_rtp", None),
            "_next_encoded_frame",
        ),
    }


def _sender_report_problems() -> list[str]:
    fields = getattr(RtcpSenderInfo, "__dataclass_fields__", {})
    if not {"ntp_timestamp", "rtp_timestamp", "packet_count", "octet_count"} <= set(fields):
        return ["RtcpSenderInfo has other fields"]
    if "ssrc" not in getattr(RtcpSrPacket, "__dataclass_fields__", {}):
        return ["RtcpSrPacket has other fields"]
    return []


def check_aiortc(version: str | None = None) -> None:
    """Raise :class:`AiortcTapError` unless aiortc is the pinned version with the
    internals this module uses (checked in the byte code, not trusted by number)."""
    version = aiortc.__version__ if version is None else version
    problems = []
    if version != AIORTC_PINNED:
        problems.append(f"aiortc {version} is installed")
    expected = {
        "RTCRtpReceiver.__init__": (RTCRtpReceiver.__init__, "_RTCRtpReceiver__decoder_queue"),
        "RTCRtpReceiver.receive": (RTCRtpReceiver.receive, "_RTCRtpReceiver__decoder_thread"),
        "RTCRtpReceiver._handle_rtp_packet": (
            getattr(RTCRtpReceiver, "_handle_rtp_packet", None),
            "_RTCRtpReceiver__decoder_queue",
        ),
        "RTCRtpReceiver._send_rtcp_pli": (
            getattr(RTCRtpReceiver, "_send_rtcp_pli", None),
            "_send_rtcp",
        ),
        "RTCRtpReceiver.__init__ (jitter buffer)": (
            RTCRtpReceiver.__init__,
            "_RTCRtpReceiver__jitter_buffer",
        ),
        "RTCRtpReceiver._handle_rtp_packet (jitter buffer)": (
            getattr(RTCRtpReceiver, "_handle_rtp_packet", None),
            "_RTCRtpReceiver__jitter_buffer",
        ),
        "JitterBuffer._remove_frame": (getattr(JitterBuffer, "add", None), "_remove_frame"),
        "RTCRtpSender._next_encoded_frame": (
            getattr(RTCRtpSender, "_next_encoded_frame", None),
            "_RTCRtpSender__encoder",
        ),
        "RTCRtpSender._handle_rtcp_packet": (
            getattr(RTCRtpSender, "_handle_rtcp_packet", None),
            "_send_keyframe",
        ),
        **_sender_report_internals(),
    }
    for where, (function, name) in expected.items():
        if name not in _names(function):
            problems.append(f"{where} no longer uses {name}")
    problems.extend(_sender_report_problems())
    for owner, name in (
        (Vp8Encoder, "_packetize"),
        (H264Encoder, "_packetize"),
        (H264Encoder, "_split_bitstream"),
    ):
        if not callable(getattr(owner, name, None)):
            problems.append(f"{owner.__name__}.{name} is gone")
    if problems:
        raise AiortcTapError(
            f"recfw's media forwarding is built for aiortc {AIORTC_PINNED} exactly, and "
            f"{'; '.join(problems)}. Install aiortc=={AIORTC_PINNED} "
            "(pip install -c constraints.txt), or port recfw/server/aiortc_tap.py; "
            "the server refuses to run rather than transcode every stream."
        )


check_aiortc()


# --- encoded frames -------------------------------------------------------------------


def vp8_is_keyframe(data: bytes) -> bool:
    """Whether a VP8 frame (RFC 6386 frame tag) is a key frame."""
    return bool(data) and not data[0] & 0x01


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` of a VP8 key frame, else ``None``."""
    if len(data) < 10 or not vp8_is_keyframe(data) or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height


def h264_is_keyframe(data: bytes) -> bool:
    """Whether an Annex B access unit holds an IDR slice (NAL type 5)."""
    i = data.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(data):
        if data[i + 3] & 0x1F == 5:
            return True
        i = data.find(b"\x00\x00\x01", i + 3)
    return False


@dataclass(slots=True)
class EncodedFrame:
    """One encoded frame as a publisher sent it (depayloaded, never decoded).

    ``timestamp`` is in the codec's RTP clock (90 kHz video, 48 kHz Opus).
    ``ntp``: when the publisher captured it, on the publisher's clock (NTP
    seconds, from its RTCP sender reports); ``None`` until the first report.
    """

    codec: str  # "vp8", "h264" or "opus"
    data: bytes
    timestamp: int
    keyframe: bool
    ntp: float | None = None


_KEYFRAME = {"vp8": vp8_is_keyframe, "h264": h264_is_keyframe}


class Subscription:
    """A bounded queue of one tap's frames for one consumer.

    When the consumer falls behind, video is dropped up to the next keyframe
    (one is requested) and audio loses its oldest frames: never unbounded.
    ``get()`` returns ``None`` when the publisher's stream has ended.
    """

    def __init__(self, tap: ReceiverTap, maxsize: int):
        self.tap = tap
        self.queue: asyncio.Queue[EncodedFrame | None] = asyncio.Queue(maxsize)
        self.need_keyframe = tap.kind == "video"
        self.dropped = 0

    def _offer(self, frame: EncodedFrame | None) -> None:
        if frame is None:
            if self.queue.full():
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            return
        if self.queue.full():
            self.dropped += 1
            if self.tap.kind == "video":
                while not self.queue.empty():
                    self.queue.get_nowait()
                self.need_keyframe = True
                self.tap.request_keyframe()
            else:
                self.queue.get_nowait()
        self.queue.put_nowait(frame)

    async def get(self) -> EncodedFrame | None:
        return await self.queue.get()

    def close(self) -> None:
        self.tap.unsubscribe(self)


class SkippingJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, except that a lost packet holds frames back briefly.

    aiortc's buffer releases frames in order only, so one packet that never
    arrives (dropped by a full socket buffer, its retransmission lost too) holds
    every later frame back until the buffer is full: 512 packets, 10 to 100
    seconds of video at the rates a recorder receives. Here the frames after a
    hole wait :data:`MAX_HOLE_WAIT` seconds of the sender's RTP clock (long
    enough for a retransmission); then the incomplete frame is given up, the
    frames after the hole are released and ``on_skip()`` is called (the tap then
    passes nothing on until a keyframe, and asks for one).
    """

    def __init__(
        self,
        capacity: int = 512,
        *,
        clock_rate: int = 90000,
        max_wait: float = MAX_HOLE_WAIT,
        on_skip: Callable[[], None] | None = None,
    ):
        super().__init__(capacity, is_video=True)
        self.max_wait = int(max_wait * clock_rate)
        self.on_skip = on_skip
        #: Holes given up (each one lost at least one frame).
        self.skips = 0
        self._newest: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        if self._newest is None or _signed(packet.timestamp - self._newest) > 0:
            self._newest = packet.timestamp
        while frame is None:
            oldest = self._oldest()
            if oldest is None or _signed(self._newest - oldest.timestamp) <= self.max_wait:
                break
            skipped, frame = self._skip()
            if not skipped:
                break
            pli = True
            self.skips += 1
            if self.on_skip is not None:
                self.on_skip()
            if frame is None:
                frame = self._remove_frame(packet.sequence_number)
        return pli, frame

    def _oldest(self) -> RtpPacket | None:
        """The oldest packet held (normally the one at the origin)."""
        if self._origin is None:
            return None
        for i in range(self._capacity):
            packet = self._packets[(self._origin + i) % self._capacity]
            if packet is not None:
                return packet
        return None

    def _skip(self) -> tuple[bool, JitterFrame | None]:
        """Move past the first hole: ``(False, None)`` if there is none.

        What is held before the hole is one frame (an earlier one would have been
        released): released if its last packet has the marker bit (the hole is the
        next frame's start), else dropped.
        """
        assert self._origin is not None
        cap = self._capacity
        held: list[RtpPacket] = []
        while len(held) < cap and (p := self._packets[(self._origin + len(held)) % cap]):
            held.append(p)
        j = len(held)
        while j < cap and self._packets[(self._origin + j) % cap] is None:
            j += 1
        if j >= cap:
            return False, None  # no hole, or nothing after it yet
        frame = None
        if held and held[-1].marker:
            data = b"".join(p._data for p in held)  # type: ignore[attr-defined]
            frame = JitterFrame(data=data, timestamp=held[0].timestamp)
        self.remove(j)
        return True, frame


class ReceiverTap:
    """The encoded frames of one receiver (one publisher's audio or video track).

    Made by :func:`tap_receiver`. Consumers call :meth:`subscribe`;
    :meth:`request_keyframe` asks the publisher for a keyframe (rate limited).
    After a loss the receiver gave up (:meth:`lost`, see
    :class:`SkippingJitterBuffer`), no frame is passed on until a keyframe.
    """

    def __init__(self, receiver: RTCRtpReceiver, kind: str):
        self.receiver = receiver
        self.kind = kind
        self.codec: str | None = None
        self.size: tuple[int, int] | None = None  # last keyframe's (video)
        self.frames = 0
        self.keyframes = 0
        self.ended = False
        self.on_frame: list[Callable[[EncodedFrame], None]] = []
        self._subscriptions: list[Subscription] = []
        self._last_pli = -PLI_INTERVAL
        self._pli_task: asyncio.Task | None = None
        self._loop = asyncio.get_running_loop()
        #: The publisher's clock for this track (set by :func:`tap_receiver`).
        self.sender_clock: SenderClock | None = None
        #: Losses given up (frames lost) and frames held back until the next keyframe.
        self.losses = 0
        self.held_back = 0
        self._awaiting_key = False

    def lost(self) -> None:
        """Frames were lost: pass nothing on until a keyframe (asked for now)."""
        self.losses += 1
        self._awaiting_key = True
        self.request_keyframe()

    def subscribe(self, maxsize: int = 0) -> Subscription:
        maxsize = maxsize or (90 if self.kind == "video" else 100)
        subscription = Subscription(self, maxsize)
        if self.ended:
            subscription._offer(None)
        else:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def request_keyframe(self) -> None:
        """Send the publisher a PLI (at most one per :data:`PLI_INTERVAL` s)."""
        if self.kind != "video" or self.ended or not self.frames:
            return  # nothing heard yet: the first frame is a keyframe anyway
        now = time.monotonic()
        if now - self._last_pli < PLI_INTERVAL:
            return
        self._last_pli = now
        if self._pli_task is None or self._pli_task.done():
            self._pli_task = self._loop.create_task(send_pli(self.receiver))

    # called from aiortc (through _TapQueue), on the event loop
    def _frame(self, codec_mime: str, data: bytes, timestamp: int) -> None:
        codec = codec_mime.split("/")[-1].lower()
        is_key = _KEYFRAME.get(codec, lambda _d: True)(data)
        clock = self.sender_clock
        ntp = clock.seconds(timestamp) if clock is not None else None
        frame = EncodedFrame(codec, data, timestamp, is_key, ntp)
        self.codec = codec
        self.frames += 1
        if self._awaiting_key:
            # (a VP8 frame whose first packet was lost may look like a keyframe: not
            # without the keyframe start code)
            if not is_key or (codec == "vp8" and vp8_size(data) is None):
                self.held_back += 1
                self.request_keyframe()
                return
            self._awaiting_key = False
        if is_key and self.kind == "video":
            self.keyframes += 1
            if codec == "vp8":
                self.size = vp8_size(data) or self.size
        for callback in list(self.on_frame):
            callback(frame)
        for subscription in list(self._subscriptions):
            subscription._offer(frame)

    def _end(self) -> None:
        if self.ended:
            return
        self.ended = True
        for subscription in self._subscriptions:
            subscription._offer(None)
        self._subscriptions.clear()


class _TapQueue(queue.Queue):
    """Stands in for the receiver's decoder queue: frames go to the tap, not the decoder.

    Only the stop sentinel (``None``) reaches aiortc's decoder thread, so it ends.
    """

    def __init__(self, tap: ReceiverTap):
        super().__init__()
        self._tap = tap

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            if self._tap._loop.is_closed():
                self._tap.ended = True
            else:
                self._tap._loop.call_soon_threadsafe(self._tap._end)
            super().put(None, block, timeout)
            return
        codec, jitter_frame = item
        self._tap._frame(codec.mimeType, jitter_frame.data, jitter_frame.timestamp)


def tap_receiver(receiver: RTCRtpReceiver, kind: str, *, skip_losses: bool = True) -> ReceiverTap:
    """Take ``receiver``'s encoded frames (call before the connection starts it).

    ``skip_losses`` (every receiver in recfw: the server's, forwarding a publisher
    to the others, and a recorder's): a video frame that lost a packet is given up
    after :data:`MAX_HOLE_WAIT` and the tap waits for the next keyframe (asked for),
    instead of aiortc holding every later frame back until its buffer is full
    (see :class:`SkippingJitterBuffer`). ``False`` keeps aiortc's own buffer.
    """
    if getattr(receiver, "_RTCRtpReceiver__decoder_thread", None) is not None:
        raise AiortcTapError("a receiver must be tapped before it starts receiving")
    if not isinstance(getattr(receiver, "_RTCRtpReceiver__decoder_queue", None), queue.Queue):
        raise AiortcTapError(f"aiortc {aiortc.__version__}: the receiver has no decoder queue")
    tap = ReceiverTap(receiver, kind)
    setattr(receiver, "_RTCRtpReceiver__decoder_queue", _TapQueue(tap))  # noqa: B010
    if skip_losses and kind == "video":
        if not isinstance(getattr(receiver, "_RTCRtpReceiver__jitter_buffer", None), JitterBuffer):
            raise AiortcTapError(f"aiortc {aiortc.__version__}: the receiver has no jitter buffer")
        buffer = SkippingJitterBuffer(on_skip=tap.lost)
        setattr(receiver, "_RTCRtpReceiver__jitter_buffer", buffer)  # noqa: B010
    tap.sender_clock = tap_sender_reports(receiver, kind)
    STATS.receivers_tapped += 1
    return tap


async def send_pli(receiver: RTCRtpReceiver) -> bool:
    """Send a PLI for every source ``receiver`` heard from lately; true when one was sent."""
    sent = False
    for source in receiver.getSynchronizationSources():
        await receiver._send_rtcp_pli(source.source)
        sent = True
    if sent:
        STATS.plis_sent += 1
    return sent


# --- sending encoded frames -----------------------------------------------------------


class ForwardingPacker(Encoder):
    """A sender's "encoder" that only packetizes frames that are already encoded."""

    def __init__(self) -> None:
        self._picture_id = 0
        #: (timestamp, ntp) of the frames packed last (sender reports are translated
        #: with them, see :func:`translate_sender_reports`).
        self.packed: deque[tuple[int, float | None]] = deque(maxlen=32)

    def encode(self, frame, force_keyframe: bool = False):
        STATS.encode_refused += 1
        raise AiortcTapError(
            "a forwarding sender was given a decoded frame: recfw forwards, it never re-encodes"
        )

    def pack(self, packet: object) -> tuple[list[bytes], int]:
        if not isinstance(packet, EncodedFrame):
            raise AiortcTapError(f"a forwarding sender was given {type(packet).__name__}")
        STATS.frames_forwarded += 1
        self.packed.append((packet.timestamp, packet.ntp))
        if packet.codec == "vp8":
            payloads = Vp8Encoder._packetize(packet.data, self._picture_id)
            self._picture_id = (self._picture_id + 1) % (1 << 15)
        elif packet.codec == "h264":
            payloads = H264Encoder._packetize(H264Encoder._split_bitstream(packet.data))
        else:
            payloads = [packet.data]
        return payloads, packet.timestamp


def install_forwarder(sender: RTCRtpSender, on_keyframe_request: Callable[[], None]) -> None:
    """Make ``sender`` forward encoded frames (its track yields :class:`EncodedFrame`).

    A PLI or FIR from the remote end calls ``on_keyframe_request`` (forward it to
    the publisher); aiortc would otherwise only flag its own, unused, encoder.
    """
    if getattr(sender, "_RTCRtpSender__encoder", "missing") is not None:
        raise AiortcTapError("a sender must get its forwarder before it starts sending")
    packer = ForwardingPacker()
    setattr(sender, "_RTCRtpSender__encoder", packer)  # noqa: B010
    setattr(sender, "_send_keyframe", on_keyframe_request)  # noqa: B010
    translate_sender_reports(sender, packer)
    STATS.forwarders_installed += 1


def is_forwarding(sender: RTCRtpSender) -> bool:
    """Whether ``sender`` sends through a :class:`ForwardingPacker` (tests, diagnostics).

    aiortc drops the encoder when the sender stops; a stopped forwarder reads false.
    """
    return isinstance(getattr(sender, "_RTCRtpSender__encoder", None), ForwardingPacker)


# --- sender reports (lip sync) -----------------------------------------------------------

#: RTP clock rates: video is 90 kHz; Opus is always 48 kHz (RFC 7587).
CLOCK_RATE = {"video": 90000, "audio": 48000}
_WRAP = 1 << 32


def ntp_seconds(ntp: int) -> float:
    """A 64-bit NTP timestamp (32.32 fixed point) as seconds."""
    return (ntp >> 32) + (ntp & 0xFFFFFFFF) / _WRAP


def ntp_timestamp(seconds: float) -> int:
    """Seconds as a 64-bit NTP timestamp."""
    whole = int(seconds)
    return ((whole & 0xFFFFFFFF) << 32) | min(round((seconds - whole) * _WRAP), _WRAP - 1)


def _signed(delta: int) -> int:
    """A difference of 32-bit RTP timestamps as the nearest signed value."""
    delta %= _WRAP
    return delta - _WRAP if delta >= _WRAP // 2 else delta


@dataclass(frozen=True, slots=True)
class SenderReport:
    """One RTCP sender report: the sender's clock (NTP seconds) at RTP timestamp ``rtp``."""

    ssrc: int
    ntp: float
    rtp: int  # 32 bits, in the sender's RTP timestamps
    received_at: float  # time.monotonic() here


#: Seconds of sender reports a :class:`SenderClock` keeps.
REPORT_WINDOW = 10.0


class SenderClock:
    """A receiver's frames on the sender's clock, from the RTCP sender reports it gets.

    Made by :func:`tap_sender_reports`. :meth:`seconds` turns a frame's timestamp
    as aiortc gives it (the tap's ``EncodedFrame.timestamp``, a decoded frame's
    ``pts``: the RTP timestamp minus the receiver's first one) into the time the
    sender captured it, in NTP seconds. Every track a sender sends shares its NTP
    clock, so a participant's audio and video line up on it.

    Browsers report their capture clock exactly. Some senders (aiortc's) report
    when they *sent* a packet instead, which is never before its capture and
    later when the sender is busy: of the reports of the last
    :data:`REPORT_WINDOW` seconds, the one that puts the frame earliest wins.
    """

    def __init__(self, receiver: RTCRtpReceiver, kind: str):
        self.receiver = receiver
        self.kind = kind
        self.rate = CLOCK_RATE[kind]
        self.report: SenderReport | None = None  # the latest
        self.reports = 0
        self.on_report: list[Callable[[SenderReport], None]] = []
        self._recent: deque[SenderReport] = deque(maxlen=64)

    def _origin(self) -> int | None:
        mapper = getattr(self.receiver, "_RTCRtpReceiver__timestamp_mapper", None)
        return getattr(mapper, "_origin", None)

    def seconds(self, timestamp: int, since: int | None = None) -> float | None:
        """The sender's clock (NTP seconds) at ``timestamp``; ``None`` without a report yet.

        ``since``: ignore a report about timestamps before this one (a report from
        before the stream switched to another publisher, see ``ForwardTrack``).
        """
        origin = self._origin()
        if origin is None:
            return None
        best: float | None = None
        for report in self._recent:
            # The report's RTP timestamp in the frames' timestamps (which keep counting
            # past a 32-bit wrap): the nearest candidate to the frame's.
            at = timestamp + _signed(report.rtp - origin - timestamp)
            if since is not None and at < since:
                continue
            captured = report.ntp + (timestamp - at) / self.rate
            if best is None or captured < best:
                best = captured
        return best

    def _report(self, packet: RtcpSrPacket, now: float | None = None) -> None:
        info = packet.sender_info
        if info.ntp_timestamp == 0:  # a sender that has not sent anything yet
            return
        now = time.monotonic() if now is None else now
        report = SenderReport(packet.ssrc, ntp_seconds(info.ntp_timestamp), info.rtp_timestamp, now)
        self.report = report
        self.reports += 1
        self._recent.append(report)
        while report.received_at - self._recent[0].received_at > REPORT_WINDOW:
            self._recent.popleft()
        STATS.sender_reports += 1
        for callback in list(self.on_report):
            callback(report)


def tap_sender_reports(receiver: RTCRtpReceiver, kind: str) -> SenderClock:
    """The :class:`SenderClock` of ``receiver`` (made once; aiortc still gets every packet)."""
    clock = getattr(receiver, "_recfw_sender_clock", None)
    if isinstance(clock, SenderClock):
        return clock
    if kind not in CLOCK_RATE:
        raise AiortcTapError(f"no RTP clock rate for a {kind!r} receiver")
    clock = SenderClock(receiver, kind)
    handle = receiver._handle_rtcp_packet  # the bound method the transport calls

    async def _handle_rtcp_packet(packet) -> None:
        if isinstance(packet, RtcpSrPacket):
            clock._report(packet)
        await handle(packet)

    setattr(receiver, "_handle_rtcp_packet", _handle_rtcp_packet)  # noqa: B010
    setattr(receiver, "_recfw_sender_clock", clock)  # noqa: B010
    return clock


class CaptureTimes:
    """(RTP timestamp before the sender's offset, capture time in NTP seconds or ``None``)
    of the frames a sender sent last; what :func:`translate_sender_reports` reads."""

    def __init__(self) -> None:
        self.packed: deque[tuple[int, float | None]] = deque(maxlen=32)


def report_capture_times(sender: RTCRtpSender, capture: Callable[[], float | None]) -> None:
    """Make an *encoding* aiortc sender report its frames' capture times.

    aiortc reports when it sent a packet; a busy sender sends late, and its
    audio and video late by different amounts. ``capture()`` is called right
    after each frame is encoded and returns when that frame was captured (NTP
    seconds, e.g. from the track's own clock) or ``None``; the reports are
    rewritten like a forwarding sender's (:func:`translate_sender_reports`).
    """
    if isinstance(getattr(sender, "_RTCRtpSender__encoder", None), ForwardingPacker):
        raise AiortcTapError("a forwarding sender reports its frames' capture times already")
    times = CaptureTimes()
    next_encoded_frame = sender._next_encoded_frame

    async def _next_encoded_frame(codec):
        frame = await next_encoded_frame(codec)
        if frame is not None:
            times.packed.append((frame.timestamp % _WRAP, capture()))
        return frame

    setattr(sender, "_next_encoded_frame", _next_encoded_frame)  # noqa: B010
    translate_sender_reports(sender, times)


def translate_sender_reports(sender: RTCRtpSender, packer: ForwardingPacker | CaptureTimes) -> None:
    """Make ``sender``'s RTCP sender reports carry the publisher's clock.

    aiortc reports its own clock at the moment it sent the last packet, which
    says when the *server* forwarded a frame, not when the publisher captured
    it: a viewer or the recorder could not line a publisher's audio and video
    up with that. Each report is rewritten to the capture time (publisher NTP,
    :attr:`EncodedFrame.ntp`) of the frame it names; while the publisher has
    sent no report of its own, an empty receiver report goes out instead (the
    receiving end then keeps its own timing, as without reports).
    """
    send = sender._send_rtcp
    origin: list[int] = []  # the sender's RTP timestamp offset, once known

    def frame_ntp(rtp: int) -> float | None:
        if not packer.packed:
            return None
        # aiortc sends a frame's packets right after packing it (no await between), so
        # a report names the last frame packed; the offset it gives must not change.
        last_ts, last_ntp = packer.packed[-1]
        offset = (rtp - last_ts) % _WRAP
        if not origin:
            origin.append(offset)
        if offset == origin[0]:
            return last_ntp
        wanted = (rtp - origin[0]) % _WRAP
        return next((ntp for ts, ntp in reversed(packer.packed) if ts % _WRAP == wanted), None)

    async def _send_rtcp(packets: list) -> None:
        out = []
        for packet in packets:
            if isinstance(packet, RtcpSrPacket):
                ntp = frame_ntp(packet.sender_info.rtp_timestamp)
                if ntp is None:
                    STATS.sender_reports_withheld += 1
                    packet = RtcpRrPacket(ssrc=packet.ssrc, reports=packet.reports)
                else:
                    STATS.sender_reports_translated += 1
                    info = packet.sender_info
                    packet = RtcpSrPacket(
                        ssrc=packet.ssrc,
                        sender_info=RtcpSenderInfo(
                            ntp_timestamp=ntp_timestamp(ntp),
                            rtp_timestamp=info.rtp_timestamp,
                            packet_count=info.packet_count,
                            octet_count=info.octet_count,
                        ),
                        reports=packet.reports,
                    )
            out.append(packet)
        await send(out)

    setattr(sender, "_send_rtcp", _send_rtcp)  # noqa: B010


@dataclass
class TapStats:
    """Process-wide counters (tests and benchmarks read them)."""

    receivers_tapped: int = 0
    forwarders_installed: int = 0
    frames_forwarded: int = 0
    plis_sent: int = 0
    encode_refused: int = 0
    #: RTCP sender reports received by tapped receivers (lip sync).
    sender_reports: int = 0
    #: A forwarding sender's reports sent with the publisher's clock / withheld (none yet).
    sender_reports_translated: int = 0
    sender_reports_withheld: int = 0
    decoders_created: dict[str, int] = field(default_factory=dict)
    #: (width, height) of the first picture each recorder video decoder made.
    decoded_sizes: list[tuple[int, int]] = field(default_factory=list)
    #: Frames the recorder's decoded tracks decoded, by kind.
    frames_decoded: dict[str, int] = field(default_factory=dict)


STATS = TapStats()
