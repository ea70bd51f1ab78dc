"""recfw.server.aiortc_tap: the one module on aiortc's private internals, and its guards."""

from __future__ import annotations

import asyncio
import fractions
import time
from pathlib import Path

import av
import pytest
from aiortc import MediaStreamTrack
from recfw.errors import RecfwError
from recfw.server import aiortc_tap
from recfw.server.aiortc_tap import (
    AiortcTapError,
    EncodedFrame,
    ForwardingPacker,
    check_aiortc,
    h264_is_keyframe,
    vp8_is_keyframe,
    vp8_size,
)
from recfw.server.encoded_source import encode_vp8
from recfw.server.sdp import prefer_codecs, sending_codecs


def test_the_pinned_aiortc_passes_and_any_other_version_fails_loudly():
    check_aiortc()  # the installed one: it is what constraints.txt pins
    with pytest.raises(AiortcTapError) as info:
        check_aiortc("1.17.0")
    message = str(info.value)
    assert "aiortc 1.17.0 is installed" in message
    assert "aiortc==1.16.0" in message and "refuses to run" in message


def test_changed_internals_fail_loudly(monkeypatch):
    from aiortc.rtcrtpsender import RTCRtpSender

    async def _next_encoded_frame(self, codec):  # a rewrite without the encoder attribute
        return None

    monkeypatch.setattr(RTCRtpSender, "_next_encoded_frame", _next_encoded_frame)
    with pytest.raises(AiortcTapError, match="_next_encoded_frame no longer uses"):
        check_aiortc()


def test_pyproject_pins_the_version_the_tap_is_built_for():
    root = Path(__file__).resolve().parents[2]
    assert f'"aiortc=={aiortc_tap.AIORTC_PINNED}"' in (root / "pyproject.toml").read_text()
    assert f"aiortc=={aiortc_tap.AIORTC_PINNED}" in (root / "constraints.txt").read_text()


def test_vp8_keyframes_and_size_from_the_bitstream():
    frames = encode_vp8(352, 288, 6, keyframe_interval=3)
    assert [vp8_is_keyframe(f) for f in frames] == [True, False, False, True, False, False]
    assert vp8_size(frames[0]) == (352, 288)
    assert vp8_size(frames[1]) is None
    assert not vp8_is_keyframe(b"")


def test_h264_keyframes_from_the_bitstream():
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = 160, 120, "yuv420p"
    codec.time_base = fractions.Fraction(1, 30)
    codec.options = {"tune": "zerolatency", "preset": "ultrafast"}
    codec.gop_size = 4
    out = []
    for i in range(8):
        frame = av.VideoFrame(160, 120, "yuv420p")
        frame.pts = i
        out += [bytes(p) for p in codec.encode(frame)]
    flags = [h264_is_keyframe(d) for d in out]
    assert flags[0] and flags.count(True) >= 2 and not all(flags)


def test_the_packer_packs_and_refuses_to_encode():
    packer = ForwardingPacker()
    data = bytes(range(256)) * 20  # 5120 bytes: several RTP packets
    payloads, ts = packer.pack(EncodedFrame("vp8", data, 1234, True))
    assert ts == 1234 and len(payloads) >= 4
    # Each payload: the VP8 payload descriptor (4 bytes with a picture id), then the frame.
    assert b"".join(p[4:] for p in payloads) == data
    payloads, _ = packer.pack(EncodedFrame("opus", b"\x01\x02", 960, True))
    assert payloads == [b"\x01\x02"]
    with pytest.raises(AiortcTapError, match="never re-encodes"):
        packer.encode(av.VideoFrame(16, 16, "yuv420p"))
    with pytest.raises(AiortcTapError, match="was given bytes"):
        packer.pack(b"raw")


OFFER = "\r\n".join(
    [
        "v=0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:0 PCMU/8000",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103",
        "a=rtpmap:96 VP9/90000",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:102 VP8/90000",
        "a=rtpmap:103 rtx/90000",
        "a=fmtp:103 apt=102",
        "",
    ]
)


def test_the_room_codec_goes_first_with_its_rtx():
    sdp = prefer_codecs(OFFER, "VP8")
    assert "m=video 9 UDP/TLS/RTP/SAVPF 102 103 96 97" in sdp
    assert "m=audio 9 UDP/TLS/RTP/SAVPF 111 0" in sdp
    # aiortc reads codecs in a=rtpmap order: those lines are reordered too.
    rtpmaps = [line.split()[0] for line in sdp.splitlines() if line.startswith("a=rtpmap")]
    assert rtpmaps[2:] == ["a=rtpmap:102", "a=rtpmap:103", "a=rtpmap:96", "a=rtpmap:97"]
    assert sdp.index("a=fmtp:103 apt=102") < sdp.index("a=rtpmap:96")
    assert sending_codecs(sdp) == [("audio", "opus"), ("video", "vp8")]
    with pytest.raises(RecfwError, match=r"m-line 1 \(video\) has no H264.*offered: vp9, vp8"):
        prefer_codecs(OFFER, "H264")


# --- RTCP sender reports (lip sync) ---------------------------------------------------


def test_changed_sender_report_internals_fail_loudly(monkeypatch):
    from aiortc.rtcrtpreceiver import RTCRtpReceiver

    async def _handle_rtcp_packet(self, packet):  # a rewrite that no longer reads reports
        return None

    monkeypatch.setattr(RTCRtpReceiver, "_handle_rtcp_packet", _handle_rtcp_packet)
    with pytest.raises(AiortcTapError, match="_handle_rtcp_packet no longer uses sender_info"):
        check_aiortc()


def test_ntp_timestamps_round_trip():
    for seconds in (0.0, 1.5, 3_900_000_000.123456, 4_294_967_295.999999):
        assert abs(aiortc_tap.ntp_seconds(aiortc_tap.ntp_timestamp(seconds)) - seconds) < 1e-6


class _Receiver:
    """Just the receiver state a SenderClock reads: aiortc's own TimestampMapper."""

    def __init__(self):
        from aiortc.rtcrtpreceiver import TimestampMapper

        self._RTCRtpReceiver__timestamp_mapper = TimestampMapper()


def _sr(ssrc: int, ntp: float, rtp: int):
    from aiortc.rtp import RtcpSenderInfo, RtcpSrPacket

    info = RtcpSenderInfo(
        ntp_timestamp=aiortc_tap.ntp_timestamp(ntp),
        rtp_timestamp=rtp % (1 << 32),
        packet_count=1,
        octet_count=1,
    )
    return RtcpSrPacket(ssrc=ssrc, sender_info=info)


def test_sender_clock_maps_frame_timestamps_through_the_latest_report_and_rtp_wraps():
    receiver = _Receiver()
    mapper = receiver._RTCRtpReceiver__timestamp_mapper
    clock = aiortc_tap.SenderClock(receiver, "video")  # 90 kHz
    first = (1 << 32) - 9000  # 0.1 s before the 32-bit RTP timestamp wraps
    assert mapper.map(first) == 0
    assert clock.seconds(0) is None  # no report yet
    clock._report(_sr(7, 1000.0, first + 4500))  # the sender's clock at 0.05 s in
    assert clock.seconds(0) == pytest.approx(999.95, abs=1e-6)
    wrapped = mapper.map((first + 18000) % (1 << 32))  # 0.2 s in, past the wrap
    assert wrapped == 18000
    assert clock.seconds(wrapped) == pytest.approx(1000.15, abs=1e-6)
    # A report that puts the frames later (a sender that reports when it sent a
    # packet, here 30 ms after its capture) changes nothing ...
    clock._report(_sr(7, 1000.18, (first + 18000) % (1 << 32)))
    assert clock.seconds(wrapped) == pytest.approx(1000.15, abs=1e-6)
    # ... one that puts them earlier (its RTP clock ran 2 ms fast) takes over.
    clock._report(_sr(7, 1000.148, (first + 18000) % (1 << 32)))
    assert clock.seconds(wrapped) == pytest.approx(1000.148, abs=1e-6)
    assert clock.seconds(0) == pytest.approx(999.948, abs=1e-6)
    # A report about frames before ``since`` (another publisher on this stream) is unused.
    assert clock.seconds(27000, since=20000) is None
    assert clock.seconds(27000, since=18000) == pytest.approx(1000.248, abs=1e-6)
    assert clock.reports == 3 and clock.report.ssrc == 7
    # Reports older than the window are forgotten (here: the two early ones).
    later = clock.report.received_at + aiortc_tap.REPORT_WINDOW + 1
    clock._report(_sr(7, 1000.2, (first + 27000) % (1 << 32)), now=later)
    assert clock.seconds(wrapped) == pytest.approx(1000.1, abs=1e-6)
    # An audio receiver counts 48 kHz.
    audio = aiortc_tap.SenderClock(_Receiver(), "audio")
    audio.receiver._RTCRtpReceiver__timestamp_mapper.map(5000)
    audio._report(_sr(8, 50.0, 5000 + 960))
    assert audio.seconds(0) == pytest.approx(49.98, abs=1e-6)


class _EncodedTrack(MediaStreamTrack):
    """Encoded frames with a known capture clock, paced like a sender (20 ms / 33 ms)."""

    BASE = 1_000_000_000.0  # 1931: far from the machine's clock, only translation gets there

    def __init__(self, kind: str, clock_seconds_known_after: float):
        super().__init__()
        self.kind = kind
        self.codec = "opus" if kind == "audio" else "vp8"
        self.step = 960 if kind == "audio" else 3000
        self.rate = 48000 if kind == "audio" else 90000
        self.period = self.step / self.rate
        self.known_after = clock_seconds_known_after
        self.count = 0
        self._start: float | None = None

    def ntp(self, index: int) -> float:
        return self.BASE + 0.25 + index * self.period

    async def recv(self):  # type: ignore[override]  # encoded frames, sent as they are
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self.count * self.period - time.monotonic()))
        i = self.count
        self.count += 1
        known = time.monotonic() - self._start >= self.known_after
        # Unique payloads (the index): the tapped receiver never decodes them.
        data = b"\x00" + i.to_bytes(4, "big") + bytes(40)
        return EncodedFrame(self.codec, data, i * self.step, True, self.ntp(i) if known else None)


async def test_sender_reports_are_tapped_and_forwarded_with_the_publishers_clock():
    """A forwarding sender's reports carry its frames' capture clock (never its own);
    the far end's tapped receiver stamps each frame with that clock, exactly."""
    from aiortc import RTCConfiguration, RTCPeerConnection
    from recfw.server.aiortc_tap import STATS, install_forwarder, tap_receiver
    from recfw.server.ice import restrict_host_addresses, unrestrict_host_addresses

    restrict_host_addresses(["127.0.0.1"])
    sources = {
        kind: _EncodedTrack(kind, clock_seconds_known_after=2.0) for kind in ("audio", "video")
    }
    pc1 = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc2 = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    got: dict[str, list] = {"audio": [], "video": []}
    reports: dict[str, list] = {"audio": [], "video": []}
    withheld = STATS.sender_reports_withheld
    try:
        for kind in ("audio", "video"):
            transceiver = pc1.addTransceiver(kind, direction="sendonly")
            transceiver.sender.replaceTrack(sources[kind])
            install_forwarder(transceiver.sender, lambda: None)
        await pc1.setLocalDescription(await pc1.createOffer())
        await pc2.setRemoteDescription(pc1.localDescription)
        for transceiver in pc2.getTransceivers():
            kind = transceiver.kind
            tap = tap_receiver(transceiver.receiver, kind)
            tap.on_frame.append(got[kind].append)
            tap.sender_clock.on_report.append(reports[kind].append)
        await pc2.setLocalDescription(await pc2.createAnswer())
        await pc1.setRemoteDescription(pc2.localDescription)
        async with asyncio.timeout(30):
            while not all(
                len(reports[k]) >= 2 and sum(f.ntp is not None for f in got[k]) >= 10
                for k in reports
            ):
                await asyncio.sleep(0.05)
    finally:
        await pc1.close()
        await pc2.close()
        unrestrict_host_addresses()
    # While the frames had no capture time, the sender said nothing about its clock.
    assert STATS.sender_reports_withheld > withheld
    for kind in ("audio", "video"):
        source = sources[kind]
        assert all(source.BASE < r.ntp < source.BASE + 60 for r in reports[kind]), reports[kind]
        stamped = [f for f in got[kind] if f.ntp is not None]
        for frame in stamped:
            index = int.from_bytes(frame.data[1:5], "big")
            assert frame.ntp == pytest.approx(source.ntp(index), abs=1e-4), (kind, index)
        # Frames before the first report have none; after it, every one has it.
        first = got[kind].index(stamped[0])
        assert all(f.ntp is not None for f in got[kind][first:])


def _vp8_packets(frames: list[bytes], fps: int = 5) -> list:
    """RTP packets of ``frames`` as a publisher sends them (payload descriptors), with the
    depayloaded data aiortc's receiver gives its jitter buffer."""
    from aiortc.codecs import depayload
    from aiortc.codecs.vpx import Vp8Encoder
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters
    from aiortc.rtp import RtpPacket

    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    packets, seq = [], 65500  # the sequence numbers wrap on the way
    for n, data in enumerate(frames):
        payloads = Vp8Encoder._packetize(data, n)
        for i, payload in enumerate(payloads):
            packet = RtpPacket(
                payload_type=96,
                marker=int(i == len(payloads) - 1),
                sequence_number=seq % 65536,
                timestamp=(4_294_900_000 + n * 90000 // fps) % (1 << 32),
                ssrc=1234,
                payload=payload,
            )
            packet._data = depayload(codec, payload)
            packets.append((n, packet))
            seq += 1
    return packets


def test_a_lost_packet_holds_frames_back_briefly_then_the_frames_after_it_go_on():
    from aiortc.jitterbuffer import JitterBuffer
    from recfw.server.aiortc_tap import MAX_HOLE_WAIT, SkippingJitterBuffer

    fps = 5
    frames = encode_vp8(320, 180, 20, keyframe_interval=10, bitrate=600_000)
    packets = _vp8_packets(frames, fps)
    lost = next(p for n, p in packets if n == 2)  # the first packet of frame 2
    skipped = []
    buffers = {
        "aiortc": JitterBuffer(capacity=512, is_video=True),
        "skipping": SkippingJitterBuffer(on_skip=lambda: skipped.append(True)),
    }
    released: dict[str, list[bytes]] = {name: [] for name in buffers}
    for name, buffer in buffers.items():
        for _, packet in packets:
            if packet is lost:
                continue
            _, frame = buffer.add(packet)
            if frame is not None:
                released[name].append(frame.data)
    # aiortc's own buffer waits for the lost packet: nothing after frame 0 comes out
    # (a frame goes when the next one's first packet arrives: frame 2's was lost).
    assert released["aiortc"] == frames[:1]
    # The skipping one moves past the hole once the frames after it span MAX_HOLE_WAIT:
    # frame 1 goes (its last packet has the marker bit), then what came of frame 2
    # (its tail: the tap holds it back, it waits for a keyframe) and every later
    # frame (the last is still open: no packet after it).
    assert MAX_HOLE_WAIT < 3 / fps
    assert skipped == [True] and buffers["skipping"].skips == 1
    out = released["skipping"]
    assert out[:2] == frames[:2] and out[3:] == frames[3:-1]
    assert out[2] != frames[2] and frames[2].endswith(out[2])


async def test_after_a_loss_the_tap_passes_nothing_on_until_a_keyframe():
    from recfw.server.aiortc_tap import ReceiverTap

    class Receiver:  # what request_keyframe() reaches: nobody heard yet, no PLI sent
        def getSynchronizationSources(self):
            return []

    frames = encode_vp8(320, 180, 12, keyframe_interval=6)
    tap = ReceiverTap(Receiver(), "video")
    sub = tap.subscribe()
    for i, data in enumerate(frames[:3]):
        tap._frame("video/VP8", data, i * 3000)
    tap.lost()
    for i, data in enumerate(frames[3:], start=3):
        tap._frame("video/VP8", data, i * 3000)
    got = []
    while not sub.queue.empty():
        got.append(sub.queue.get_nowait())
    # frames 0-2, then nothing until the keyframe (6), then everything after it
    assert [f.data for f in got] == frames[:3] + frames[6:]
    assert tap.losses == 1 and tap.held_back == 3
