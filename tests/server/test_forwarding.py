"""The room server forwards what a publisher sends, byte for byte: no decoder, no encoder.

Publishers here send pre-encoded VP8 and Opus (``PreEncodedVideo``/``Audio``), so
nothing in this process encodes; viewers tap their receivers, so nothing decodes.
aiortc's encoder and decoder factories are counted to prove it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import aiohttp
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import av
import pytest
from aiortc import AudioStreamTrack, VideoStreamTrack
from recfw.config import parse_config
from recfw.rooms import Participant
from recfw.server.aiortc_tap import STATS, is_forwarding, send_pli, vp8_size
from recfw.server.client import HeadlessParticipant, parse_room_url
from recfw.server.encoded_source import PreEncodedAudio, PreEncodedVideo
from recfw.server.room import Room
from recfw.sources import ParticipantMedia
from recfw.testing.netcut import cut_incoming


@pytest.fixture
def codec_factories(monkeypatch):
    """Who asked aiortc for an encoder (the senders) or a decoder (how many times)."""
    seen: dict = {"encoders": [], "decoders": 0}
    real_encoder = aiortc.rtcrtpsender.get_encoder
    real_decoder = aiortc.rtcrtpreceiver.get_decoder

    def get_encoder(codec):
        seen["encoders"].append(sys._getframe(1).f_locals.get("self"))
        return real_encoder(codec)

    def get_decoder(codec):
        seen["decoders"] += 1
        return real_decoder(codec)

    monkeypatch.setattr(aiortc.rtcrtpsender, "get_encoder", get_encoder)
    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", get_decoder)
    return seen


def _pre_encoded(name: str, video: PreEncodedVideo) -> ParticipantMedia:
    return ParticipantMedia(Participant(id=name), video=video, audio=PreEncodedAudio())


async def _collect(tap, until, timeout: float = 30.0) -> list:
    """Frames of ``tap`` until ``until(frames)`` is true (or ``timeout`` s)."""
    sub = tap.subscribe(maxsize=10_000)
    frames: list = []
    deadline = time.monotonic() + timeout
    try:
        while not until(frames) and time.monotonic() < deadline:
            try:
                frame = await asyncio.wait_for(sub.get(), max(deadline - time.monotonic(), 0.01))
            except TimeoutError:
                break
            if frame is None:
                break
            frames.append(frame)
    finally:
        sub.close()
    return frames


def _unrecorded(**server):
    """A server configuration on loopback with no recording, plus ``[server]`` settings."""
    settings = {"host": "127.0.0.1", "port": 0, "iceAddresses": ["127.0.0.1"], **server}
    return parse_config({"recording": {"type": "none"}, "server": settings}, environ={})


def _server_senders(server) -> list:
    return [
        t.sender
        for room in server.rooms.values()
        for client in room.clients.values()
        for t in client.peer.pc.getTransceivers()[2:]
    ]


async def test_a_viewer_gets_the_publishers_own_frames_size_and_keyframes(
    make_server, codec_factories
):
    server = await make_server("none")
    visitor_link, host_link = server.links("standup")
    video = PreEncodedVideo(640, 360, 30, frames=45, keyframe_interval=15)
    index_of = {data: i for i, data in enumerate(video.payloads)}
    assert len(index_of) == len(video.payloads)  # every frame's bytes are different
    quiet = _pre_encoded("b", PreEncodedVideo(320, 240, 15, frames=15, keyframe_interval=15))
    async with (
        HeadlessParticipant(host_link, _pre_encoded("a", video), name="A"),
        HeadlessParticipant(visitor_link, quiet, name="B", tap_received=True) as viewer,
    ):
        (slot,) = [i for i, peer in viewer.slots.items() if peer and peer["name"] == "A"]
        video_tap, audio_tap = viewer.received[slot]
        # At least a second and a half of video with 3 keyframes (a keyframe request
        # restarts the publisher's loop, so keyframes may come sooner than every 15th).
        frames = await _collect(
            video_tap, lambda f: len(f) >= 31 and sum(x.keyframe for x in f) >= 3
        )
        audio = await _collect(audio_tap, lambda f: len(f) >= 25)

        # Every frame is one the publisher sent, byte for byte, in the order it sent them.
        assert len(frames) >= 31, len(frames)
        indices = [index_of.get(f.data) for f in frames]
        assert None not in indices, "the viewer got bytes the publisher never sent"
        sent = [i for _, i in video.sent]
        pos = 0
        for i in indices:  # a subsequence of what was sent
            pos = sent.index(i, pos) + 1
        # The publisher's keyframe pattern (every 15th frame), and its own size.
        assert frames[0].keyframe
        assert [f.keyframe for f in frames] == [i % 15 == 0 for i in indices]
        assert {vp8_size(f.data) for f in frames if f.keyframe} == {(640, 360)}
        assert all(f.codec == "opus" for f in audio) and len(audio) >= 25

        # The server forwarded: its slot senders pack, and nothing asked aiortc for
        # an encoder or a decoder (the publishers here pre-encode, the viewer taps).
        senders = _server_senders(server)
        assert senders and all(is_forwarding(s) for s in senders)
        assert codec_factories["encoders"] == []
        assert codec_factories["decoders"] == 0


async def test_a_new_viewer_gets_a_keyframe_at_once_and_viewer_plis_reach_the_publisher(
    make_server,
):
    server = await make_server("none")
    visitor_link, host_link = server.links("standup")
    # One keyframe per 10 s loop: any other keyframe was asked for.
    video = PreEncodedVideo(320, 240, 30, frames=300, keyframe_interval=300)
    quiet = _pre_encoded("b", PreEncodedVideo(160, 120, 5, frames=5, keyframe_interval=5))
    async with HeadlessParticipant(host_link, _pre_encoded("a", video), name="A"):
        while len(video.sent) < 45:  # the publisher is past its first keyframe
            await asyncio.sleep(0.1)
        joined_at = time.monotonic()
        async with HeadlessParticipant(visitor_link, quiet, name="B", tap_received=True) as viewer:
            video_tap, _ = viewer.received[0]
            frames = await _collect(video_tap, lambda f: len(f) >= 10)
            assert frames and frames[0].keyframe
            # That keyframe was sent because the server asked (the viewer joined), long
            # before the publisher's own next one (at frame 300).
            restarts = [t for t, i in video.sent if i == 0 and t > joined_at]
            assert restarts, "the server did not ask the publisher for a keyframe"
            assert len(video.sent) < 300

            # A PLI from the viewer goes through the server to the publisher.
            await asyncio.sleep(0.5)
            asked_at = time.monotonic()
            receiver = viewer.pc.getTransceivers()[2].receiver
            assert await send_pli(receiver)
            for _ in range(100):
                if any(i == 0 and t > asked_at for t, i in video.sent):
                    break
                await asyncio.sleep(0.05)
            assert any(i == 0 and t > asked_at for t, i in video.sent)


async def test_packets_lost_on_the_way_in_cost_frames_until_a_keyframe_not_a_frozen_tile(
    make_server,
):
    """A hole in what reaches the server (a full socket buffer under load) that no
    retransmission can fill: the server gives the incomplete frame up, asks the
    publisher for a keyframe and forwards from it; aiortc's own jitter buffer would
    hold every later frame back until 512 packets had come (seconds of video)."""
    # Media stops for a while here: the server must not take that for a stall.
    server = await make_server(config=_unrecorded(mediaTimeout=120))
    visitor_link, host_link = server.links("standup")
    # One keyframe per 10 s loop: a keyframe sooner was asked for.
    video = PreEncodedVideo(640, 360, 30, frames=300, keyframe_interval=300)
    quiet = _pre_encoded("b", PreEncodedVideo(160, 120, 5, frames=5, keyframe_interval=5))
    async with (
        HeadlessParticipant(host_link, _pre_encoded("a", video), name="A") as a,
        HeadlessParticipant(visitor_link, quiet, name="B", tap_received=True) as viewer,
    ):
        (slot,) = [i for i, peer in viewer.slots.items() if peer and peer["name"] == "A"]
        video_tap, _ = viewer.received[slot]
        assert len(await _collect(video_tap, lambda f: len(f) >= 10)) >= 10
        peer = server.rooms["standup"].clients[a.result.participant_id].peer
        tap = peer.video
        assert tap is not None and tap.losses == 0

        # Drop A's media at the server until A's sender no longer holds what was lost
        # (aiortc keeps its last 128 packets for retransmission; A sends about 5 video
        # packets a frame and 1 audio packet per 20 ms): a lasting hole.
        cut = cut_incoming(peer.pc, "media")
        while cut.dropped < 500:
            await asyncio.sleep(0.05)
        cut.restore()
        restored_at = time.monotonic()

        def from_keyframe(frames: list) -> list:
            first = next((i for i, f in enumerate(frames) if f.keyframe), len(frames))
            return frames[first:]

        # (The last frame completed before the hole may still come first.)
        after = from_keyframe(await _collect(video_tap, lambda f: len(from_keyframe(f)) >= 10))
        assert len(after) >= 10, "the viewer's tile froze after the loss"
        assert tap.losses >= 1  # given up, not waited out
        # That keyframe was asked for after the loss, not the publisher's own (frame 300).
        assert any(i == 0 and t > restored_at for t, i in video.sent)


async def test_the_recorder_is_the_only_decoder(make_server, codec_factories):
    server = await make_server("none")
    visitor_link, host_link = server.links("standup")
    before = dict(STATS.decoders_created)
    # Encoded before anyone joins: encoding blocks the loop the server runs on.
    media_a = _pre_encoded("a", PreEncodedVideo(640, 360, 15))
    media_b = _pre_encoded("b", PreEncodedVideo(480, 270, 15))
    async with (
        HeadlessParticipant(host_link, media_a, name="A") as host,
        HeadlessParticipant(visitor_link, media_b, name="B"),
    ):
        await asyncio.sleep(1.5)
        assert STATS.decoders_created == before  # nobody records: nothing decoded
        await host.command("start_recording")
        await asyncio.sleep(2.5)
        await host.command("stop_recording")
        engine = server.rooms["standup"].engine
        await engine.wait_stored()
    made = {k: v - before.get(k, 0) for k, v in STATS.decoders_created.items()}
    assert made.get("vp8") == 2 and made.get("opus") == 2, made
    assert codec_factories["encoders"] == []  # the recording's encoder is PyAV's, not aiortc's
    (session,) = engine.sessions
    assert session.status == "stored", session.error
    path = Path(session.stored.location.removeprefix("file://"))
    with av.open(str(path)) as container:
        assert container.streams.video[0].width == 1280
        assert sum(1 for _ in container.decode(video=0)) > 20


async def test_an_h264_room_forwards_h264(make_server, codec_factories):
    server = await make_server(config=_unrecorded(videoCodec="H264"))
    visitor_link, host_link = server.links("standup")

    def media(name):
        return ParticipantMedia(
            Participant(id=name), video=VideoStreamTrack(), audio=AudioStreamTrack()
        )

    async with (
        HeadlessParticipant(host_link, media("a"), name="A"),
        HeadlessParticipant(visitor_link, media("b"), name="B", tap_received=True) as viewer,
    ):
        video_tap, _ = viewer.received[0]
        frames = await _collect(video_tap, lambda f: len(f) >= 10)
        assert len(frames) >= 10 and {f.codec for f in frames} == {"h264"}
        assert frames[0].keyframe
        # The frames decode (as the viewer's browser would) at the publisher's size.
        codec = av.CodecContext.create("h264", "r")
        pictures = [p for f in frames for p in codec.decode(av.Packet(f.data))]
        assert pictures and (pictures[0].width, pictures[0].height) == (640, 480)
    # Only the two publishers encoded (in the headless clients); no server sender did.
    server_senders = set(map(id, _server_senders(server)))
    assert len(codec_factories["encoders"]) >= 2
    assert not server_senders & set(map(id, codec_factories["encoders"]))


async def test_room_modes_and_their_capacity(make_server, builtin_plugins):
    config = parse_config(
        {
            "recording": {"type": "none"},
            "server": {"host": "127.0.0.1", "port": 0, "maxPeople": 6},
        },
        environ={},
    )
    server = await make_server(config=config)
    server.rooms["big"] = Room(
        "big", server.settings, config, builtin_plugins, loopback_only=True, mode="group"
    )
    link, _ = server.links("big")
    joined = [await _raw_join(link, name=f"P{i}") for i in range(6)]
    try:
        assert all(w["type"] == "welcome" and w["slots"] == 5 for _, _, w in joined)
        assert joined[0][2]["mode"] == "group"
        assert joined[0][2]["video"] == {"width": 1280, "height": 720, "fps": 30, "codec": "VP8"}
        session, ws, reply = await _raw_join(link, name="one too many")
        assert reply == {"type": "error", "command": "join", "message": "the room is full"}
        await ws.close()
        await session.close()
    finally:
        for session, ws, _ in joined:
            await ws.close()
            await session.close()
    # Rooms opened without a mode are normal: 4 people, 3 slots each.
    session, ws, welcome = await _raw_join(server.links("small")[0], name="X")
    assert welcome["mode"] == "normal" and welcome["slots"] == 3
    await ws.close()
    await session.close()
    with pytest.raises(ValueError, match="roomMode"):
        Room("x", server.settings, config, builtin_plugins, loopback_only=True, mode="huge")


async def _raw_join(url: str, **join) -> tuple[aiohttp.ClientSession, object, dict]:
    room = parse_room_url(url)
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(room.ws_url)
    await ws.send_json({"type": "join", "roomKey": room.room_key, **join})
    return session, ws, await ws.receive_json(timeout=5)


def test_server_video_settings_are_checked():
    from recfw.errors import SettingsError

    good = parse_config({}, environ={})
    assert (good.server.video_width, good.server.video_height, good.server.video_fps) == (
        1280,
        720,
        30,
    )
    assert good.server.max_people == 12 and good.server.video_codec == "VP8"
    with pytest.raises(SettingsError) as info:
        parse_config(
            {"server": {"maxPeople": 1, "videoFps": 0, "videoCodec": "AV1", "videoWidth": "x"}},
            environ={},
        )
    fields = {e.field: e.message for e in info.value.errors}
    assert fields["server.maxPeople"] == "must be 2..50, not 1"
    assert fields["server.videoFps"] == "must be 1..60, not 0"
    assert "VP8 or H264" in fields["server.videoCodec"]
    assert "integer" in fields["server.videoWidth"]
