"""Real aiortc RemoteStreamTracks (loopback peer connection, no STUN) into the recorder.

The receivers' RTCP sender reports give the recorder each track's capture clock
(lip sync, recfw.media.lipsync): once they arrive (0.5-1.5 s in), the video is
placed by the sender's clock, not by when it arrives.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection
from aiortc.clock import current_ntp_time
from recfw.media import CompositeRecorder
from recfw.server.aiortc_tap import (
    SenderClock,
    ntp_seconds,
    report_capture_times,
    tap_sender_reports,
)
from recfw.server.ice import restrict_host_addresses, unrestrict_host_addresses
from recfw.sources import ParticipantMedia

from .analysis import beep_times, close, decode, flash_times, match, region_color, tile_region
from .conftest import ENCODERS, person, synthetic

FRAME = 1 / 30
#: Before the first sender reports, the recorder places each track by its arrival
#: (compensating aiortc's 60 ms audio jitter buffer): about 30 ms off on loopback.
ARRIVAL_TOLERANCE = 0.050
#: By the sender reports: within an output frame (33 ms) and a little.
SYNC_TOLERANCE = FRAME + 0.005


class Captured(MediaStreamTrack):
    """A synthetic track that remembers when its last frame was captured (NTP seconds).

    The frame with media time ``t`` is captured ``t`` after the source's clock start.
    """

    def __init__(self, inner, source_clock):
        super().__init__()
        self.kind = inner.kind
        self.inner, self.source_clock = inner, source_clock
        self.last: float | None = None

    async def recv(self):
        frame = await self.inner.recv()
        ago = time.monotonic() - (self.source_clock.start + float(frame.pts * frame.time_base))
        self.last = ntp_seconds(current_ntp_time()) - ago
        return frame


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
    # aiortc reports when it *sent* a packet, which a loaded machine makes late (and
    # the audio later than the video): this sender reports its capture clock, as a
    # browser does.
    source_clock = sender.video._clock
    got: dict[str, object] = {}
    clocks: dict[str, SenderClock] = {}

    @pc2.on("track")
    def _track(track) -> None:
        got[track.kind] = track
        for transceiver in pc2.getTransceivers():
            if transceiver.receiver.track is track:
                clocks[track.kind] = tap_sender_reports(transceiver.receiver, track.kind)

    try:
        for track in (sender.video, sender.audio):
            captured = Captured(track, source_clock)
            report_capture_times(pc1.addTrack(captured), lambda c=captured: c.last)
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
            rec.add(
                ParticipantMedia(person("r"), video=got["video"], audio=got["audio"], clocks=clocks)
            )
            await rec.start()
            await asyncio.sleep(2.0)
            # Record on until both tracks' reports are in, and 3 more markers after that.
            async with asyncio.timeout(30):
                while not all(c.reports for c in clocks.values()):
                    await asyncio.sleep(0.05)
            synced_from = rec.position + 0.5
            await asyncio.sleep(3.6)
            stats = await rec.stop()
    finally:
        await pc1.close()
        await pc2.close()
    d = decode(path)
    assert stats.video_frames - stats.dropped_video_frames == len(d.video_times)
    assert close(region_color(d.frames[-10], tile_region(0, 1, (320, 240))), (40, 80, 230), 50)
    # (the 0.8 beep went through Opus twice: its onset is found at 0.3)
    flashes, beeps = flash_times(d), beep_times(d, threshold=0.3)
    assert len(flashes) >= 2 and len(beeps) >= 2, (flashes, beeps)
    pairs = [(f, b) for f, b in match(flashes, beeps, 0.5) if b is not None]
    assert len(pairs) >= 3, (flashes, beeps)
    assert stats.synced_video_frames > 0
    for flash, beep in pairs:
        bound = SYNC_TOLERANCE if flash >= synced_from else ARRIVAL_TOLERANCE
        assert abs(beep - flash) <= bound, f"flash {flash:.3f} s, beep {beep:.3f} s"
    assert sum(f >= synced_from for f, _ in pairs) >= 2, (pairs, synced_from)
