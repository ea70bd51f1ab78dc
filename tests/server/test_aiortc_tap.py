"""recfw.server.aiortc_tap: the one module on aiortc's private internals, and its guards."""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import pytest
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
