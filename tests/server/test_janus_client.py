"""The Janus WebSocket client and the test Janus itself, against Debian's Janus on loopback."""

from __future__ import annotations

import asyncio
import re
import subprocess

import pytest
from recfw.errors import RecfwError
from recfw.rooms import Participant
from recfw.secrets import Secret
from recfw.server.encoded_source import PreEncodedAudio, PreEncodedVideo
from recfw.server.ice import restrict_host_addresses, unrestrict_host_addresses
from recfw.server.janus import JanusError, JanusSession
from recfw.server.videoroom import Publisher, create_room, destroy_room
from recfw.sources import ParticipantMedia


async def test_a_room_is_created_and_destroyed(janus_server):
    session = await JanusSession.connect(janus_server.url, Secret(janus_server.api_secret))
    try:
        handle = await session.attach()
        await create_room(handle, "r-1", publishers=25, video_codec="VP8", secret="s")
        data, _ = await handle.message({"request": "exists", "room": "r-1"})
        assert data["exists"] is True
        # A plugin's refusal is an error with the plugin's code and reason.
        with pytest.raises(JanusError, match="already exists") as caught:
            await create_room(handle, "r-1", publishers=2, video_codec="VP8", secret="s")
        assert caught.value.code == 427
        with pytest.raises(JanusError, match="Unauthorized"):
            await destroy_room(handle, "r-1", "not-the-room-secret")
        await destroy_room(handle, "r-1", "s")
        data, _ = await handle.message({"request": "exists", "room": "r-1"})
        assert data["exists"] is False
    finally:
        await session.close()


async def test_a_wrong_api_secret_is_refused(janus_server):
    with pytest.raises(JanusError, match="Unauthorized request") as caught:
        await JanusSession.connect(janus_server.url, Secret("wrong-secret-1234"))
    assert "wrong-secret-1234" not in str(caught.value)


async def test_nothing_listening_is_a_clear_error():
    with pytest.raises(RecfwError, match=r"cannot reach Janus at ws://127\.0\.0\.1:9"):
        await JanusSession.connect("ws://127.0.0.1:9", None)


def _sockets(pid: int) -> list[tuple[str, str]]:
    """(protocol, local address) of every TCP/UDP socket of process ``pid`` (from ``ss``)."""
    out = subprocess.run(
        ["ss", "-H", "-a", "-n", "-p", "-t", "-u"], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in out.splitlines():
        if f"pid={pid}," in line:
            fields = line.split()
            found.append((fields[0], fields[4]))
    return found


async def test_the_test_janus_uses_only_loopback_even_with_media_flowing(janus_server):
    """Its WebSocket API and its ICE sockets are bound to 127.0.0.1, nothing else."""
    session = await JanusSession.connect(janus_server.url, Secret(janus_server.api_secret))
    restrict_host_addresses(["127.0.0.1"])
    participant = None
    try:
        handle = await session.attach()
        await create_room(handle, "r-2", publishers=4, video_codec="VP8", secret="s")
        publisher = Publisher(session, "r-2", "p1", "P1")
        participant = _Publishing(publisher)
        await participant.start()
        await asyncio.wait_for(publisher.up.wait(), 20)
        sockets = _sockets(janus_server.pid)
        assert any(proto == "udp" for proto, _ in sockets), sockets  # ICE is up
        for proto, local in sockets:
            assert re.match(r"^127\.0\.0\.1:\d+$", local), (proto, local, sockets)
        assert sum(1 for proto, _ in sockets if proto == "tcp") >= 1
    finally:
        if participant is not None:
            await participant.close()
        await session.close()
        unrestrict_host_addresses()


class _Publishing:
    """An aiortc peer publishing pre-encoded media through a :class:`Publisher` directly."""

    def __init__(self, publisher: Publisher):
        self.publisher = publisher
        self.pc = None

    async def start(self) -> None:
        from aiortc import RTCPeerConnection, RTCSessionDescription
        from recfw.server.aiortc_tap import install_forwarder

        self.pc = RTCPeerConnection()
        video, audio = PreEncodedVideo(320, 180, 15, frames=15), PreEncodedAudio()
        self.media = ParticipantMedia(Participant(id="p1"), video=video, audio=audio)
        self.pc.addTransceiver(audio, direction="sendonly")
        sender = self.pc.addTransceiver(video, direction="sendonly").sender
        install_forwarder(sender, video.keyframe_requested)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await self.publisher.publish(self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def close(self) -> None:
        await self.publisher.close()
        if self.pc is not None:
            await self.pc.close()
        self.media.stop()
