"""Real aiortc RemoteStreamTracks (loopback peer connection, no STUN) into the recorder."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from recfw.media import CompositeRecorder
from recfw.server.ice import restrict_host_addresses, unrestrict_host_addresses
from recfw.sources import ParticipantMedia

from .analysis import beep_times, close, decode, flash_times, match, region_color, tile_region
from .conftest import ENCODERS, person, synthetic

FRAME = 1 / 30
#: Without RTCP sender reports the recorder cannot know each track's capture
#: time; it compensates aiortc's audio jitter buffer (60 ms) and measures about
#: 30 ms left on loopback. Without the compensation this is ~90 ms.
SYNC_TOLERANCE = 0.050


@pytest.fixture
def loopback_ice():
    restrict_host_addresses(["127.0.0.1"])
    yield
    unrestrict_host_addresses()


async def test_webrtc_participant_recorded_in_sync(loopback_ice, tmp_path):
    sender = synthetic(
        "s", realtime=True, width=320, height=240, marker_interval_s=1.0, color=[40, 80, 230]
    )
    pc1 = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc2 = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    got: dict[str, object] = {}
    pc2.on("track", lambda track: got.__setitem__(track.kind, track))
    try:
        pc1.addTrack(sender.video)
        pc1.addTrack(sender.audio)
        await pc1.setLocalDescription(await pc1.createOffer())
        await pc2.setRemoteDescription(pc1.localDescription)
        await pc2.setLocalDescription(await pc2.createAnswer())
        await pc1.setRemoteDescription(pc2.localDescription)
        async with asyncio.timeout(10):
            while len(got) < 2:
                await asyncio.sleep(0.02)
        path = tmp_path / "webrtc.mkv"
        with open(path, "wb") as out:
            rec = CompositeRecorder(ENCODERS["mkv"], out, realtime=True)
            rec.add(ParticipantMedia(person("r"), video=got["video"], audio=got["audio"]))
            await rec.start()
            await asyncio.sleep(3.6)
            stats = await rec.stop()
    finally:
        await pc1.close()
        await pc2.close()
    d = decode(path)
    assert stats.video_frames - stats.dropped_video_frames == len(d.video_times)
    assert close(region_color(d.frames[-10], tile_region(0, 1, (320, 240))), (40, 80, 230), 50)
    flashes, beeps = flash_times(d), beep_times(d)
    assert len(flashes) >= 2 and len(beeps) >= 2, (flashes, beeps)
    pairs = [(f, b) for f, b in match(flashes, beeps, 0.5) if b is not None]
    assert len(pairs) >= 2, (flashes, beeps)
    for flash, beep in pairs:
        assert abs(beep - flash) <= SYNC_TOLERANCE, f"flash {flash:.3f} s, beep {beep:.3f} s"
