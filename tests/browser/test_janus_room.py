"""Rooms on Janus with real Chromium participants (``[rooms] backend = "janus"``).

A real Janus (Debian's, confined to loopback by ``recfw.testing.janus``) carries
the media; recfw relays the SDP; the recording is made by a ``recfw worker``
process subscribed to every publisher with one multistream subscription.

* One Chromium in a Janus room: it publishes 3 simulcast layers; the recorder
  takes the highest; the stored file decodes, 720p, its tile live.
* A 25-person group room (about 5 minutes on a busy 2-core box, see
  docs/rooms.md): 23 synthetic
  publishers (aiortc sending pre-encoded VP8, 5 of them silent Opus too, receiving
  nothing) and 2 Chromiums whose fake cameras play a red and a blue 1280x720 file;
  the composite is 1280x720, the active grid of 25 people, and the two Chromium
  tiles are found by colour and change from frame to frame.
"""

from __future__ import annotations

import asyncio
import fractions
from pathlib import Path

import av
import numpy as np
import pytest
from browser_helpers import (
    group_meeting,
    open_room,
    participant_id,
    wait_for,
    wait_remote_tile,
    wait_status,
)
from conftest import CHROMIUM, CHROMIUM_ARGS, HOST_SECRET
from media_check import assert_tiles_live, check_recording
from recfw.config import parse_config
from recfw.media.layout import fit, grid
from recfw.rooms import Participant
from recfw.server import RoomServer
from recfw.server.client import HeadlessParticipant
from recfw.server.encoded_source import PreEncodedVideo
from recfw.server.ice import unrestrict_host_addresses
from recfw.sources import ParticipantMedia
from recfw.testing.synthetic import SyntheticAudio

pytestmark = pytest.mark.browser

API_KEY = "janus-test-api-key-5d1c"
W, H = 1280, 720
#: The Chromium cameras' frame rate (720p is what is tested; a low rate keeps two
#: Chromiums' three-layer encoders and the recorder within a busy 2-core box).
FPS = 5
RED, BLUE = (220, 30, 30), (30, 40, 220)
GREY = (110, 110, 110)
#: Cells of the recording's grid ([server] maxTiles, default 16: 15 people and "+K more").
TILES = 16
#: Synthetic publishers that send (silent) audio; the others joined without a microphone.
#: Each Opus stream is 50 packets a second for the recorder to take in and decode.
WITH_MICROPHONE = 5
#: Changes of a live tile's picture, at least, in the last third of the recording (a
#: dead tile: none). Not a share of the frames: a recorder on a busy machine holds
#: pictures (drops them) while it catches up.
LIVE_CHANGES = 3
#: Synthetic publishers that join at once.
JOIN_BATCH = 8

SIMULCAST_JS = """
async () => {
  const stats = await window.recfwState.server.getStats();
  const out = [];
  stats.forEach((r) => {
    if (r.type === "outbound-rtp" && r.kind === "video")
      out.push({rid: r.rid, width: r.frameWidth || 0, frames: r.framesEncoded || 0});
  });
  return out;
}
"""


def janus_config(janus, trigger: str, **server) -> object:
    return parse_config(
        {
            "recording": {
                "type": "local",
                "startTrigger": trigger,
                "destination": {"provider": "local", "bucket": "recordings", "fileFormat": "mkv"},
            },
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "iceAddresses": ["127.0.0.1"],
                "apiKey": API_KEY,
                **server,
            },
            "rooms": {
                "backend": "janus",
                "janusUrl": janus.url,
                "janusApiSecret": janus.api_secret,
            },
        },
        environ={},
    )


@pytest.fixture
async def janus_server_for(builtin_plugins, tmp_path, monkeypatch, janus_server):
    """``await janus_server_for(trigger, **server)``: a room server whose rooms are on Janus
    and whose recordings are made by recorder processes."""
    servers: list[RoomServer] = []
    monkeypatch.chdir(tmp_path)

    async def make(trigger: str, **server_settings) -> RoomServer:
        server = RoomServer(
            janus_config(janus_server, trigger, **server_settings),
            builtin_plugins,
            host_secret=HOST_SECRET,
            spool_dir=tmp_path / "spool",
            supervise=True,
        )
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()
    unrestrict_host_addresses()


async def _stored(server: RoomServer, room: str):
    await wait_for(lambda: room not in server.rooms, 90, what="everyone to leave")
    (closed,) = [r for r in server.closed_rooms if r.name == room]
    await asyncio.wait_for(closed.engine.wait_stored(), 120)
    (session,) = closed.engine.sessions
    assert session.status == "stored", session.error
    return session


async def test_a_chromium_in_a_janus_room_publishes_simulcast_and_is_recorded_at_720p(
    browser, janus_server_for, shots
):
    server = await janus_server_for("automatic", videoFps=15)
    _, host_link = server.links("standup")
    page = await open_room(browser, host_link, "Hana")
    assert await page.evaluate("window.recfwState.backend") == "janus"
    await wait_status(page, "started")
    # Three simulcast layers leave the browser: 1280, 640 and 320 wide.
    layers = await wait_for(
        lambda: _layers(page), 30, what="three simulcast layers with frames encoded"
    )
    assert sorted(layers) == [320, 640, 1280], layers
    await asyncio.sleep(4)
    await shots(page, "janus-recording")
    await page.context.close()
    session = await _stored(server, "standup")
    checked = check_recording(Path("recordings") / session.file_name, people=1)
    assert_tiles_live(checked, min_seconds=2)
    assert checked.audio_peak_rms > 300, checked


async def _layers(page) -> dict[str, int] | None:
    encodings = await page.evaluate(SIMULCAST_JS)
    live = {e["rid"]: e["width"] for e in encodings if e["frames"] > 0 and e["width"]}
    return sorted(live.values()) if len(live) == 3 else None


def _rgb(colour, frame: int, width: int = W, height: int = H) -> np.ndarray:
    """``colour`` with a white square that moves every frame (a live picture)."""
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:] = colour
    side = height // 5
    x = (width // 12) * (1 + frame % 10)
    rgb[height // 3 : height // 3 + side, x : x + side] = 255
    return rgb


def write_y4m(path: Path, colour, frames: int = 10) -> Path:
    """A 1280x720 camera file for Chromium (``--use-file-for-fake-video-capture``)."""
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F{FPS}:1 Ip A1:1 C420mpeg2\n".encode())
        for i in range(frames):
            yuv = av.VideoFrame.from_ndarray(_rgb(colour, i), format="rgb24").reformat(
                format="yuv420p"
            )
            f.write(b"FRAME\n")
            for plane in yuv.planes:
                data = np.frombuffer(bytes(plane), np.uint8).reshape(-1, plane.line_size)
                f.write(data[:, : plane.width].tobytes())
    return path


def grey_vp8(width: int = 320, height: int = 180, frames: int = 20) -> list[bytes]:
    """Pre-encoded VP8 of a grey picture with a moving square (the synthetic publishers)."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate, codec.gop_size = 200_000, frames
    codec.time_base = fractions.Fraction(1, FPS)
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out = []
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(_rgb(GREY, i, width, height), format="rgb24").reformat(
            format="yuv420p"
        )
        frame.pts = i
        if i == 0:
            frame.pict_type = av.video.frame.PictureType.I
        out.append(b"".join(bytes(p) for p in codec.encode(frame)))
    return out


def _tile_colour(frame: np.ndarray, rect) -> np.ndarray:
    inner = frame[rect.y + 4 : rect.y + rect.h - 4, rect.x + 4 : rect.x + rect.w - 4]
    return np.median(inner.reshape(-1, 3), axis=0)


def _is(colour, target) -> bool:
    return all(abs(float(c) - t) < 60 for c, t in zip(colour, target, strict=True))


async def test_a_25_person_janus_room_records_the_chromium_tiles_live(
    janus_server_for, tmp_path, shots
):
    people, chromiums = 25, 2
    server = await janus_server_for("none", maxPeople=people, videoFps=FPS)
    meeting = await group_meeting(server, API_KEY)
    room_name = meeting["roomName"].strip("/")
    # Encoded before anyone joins (encoding blocks the loop the room server runs on).
    payloads = grey_vp8()
    cameras = [write_y4m(tmp_path / f"c{i}.y4m", c) for i, c in enumerate((RED, BLUE))]
    from playwright.async_api import async_playwright

    synthetic: list[HeadlessParticipant] = []
    browsers = []
    try:
        async with async_playwright() as pw:
            pages = []
            # The Chromiums come first: the active grid shows the first 15 by join order
            # (and speakers: their fake microphones beep, the synthetic ones are silent).
            for i, link in enumerate((meeting["hostRoomUrl"], meeting["roomUrl"])):
                args = CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={cameras[i]}"]
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args)
                browsers.append(browser)
                pages.append(await open_room(browser, link, ("Red", "Blue")[i]))
            for i in range(people - chromiums):
                media = ParticipantMedia(
                    Participant(id=f"s{i}"),
                    video=PreEncodedVideo(320, 180, FPS, payloads=payloads),
                    # (the others joined without a microphone: video only)
                    audio=SyntheticAudio(i, speaking=False) if i < WITH_MICROPHONE else None,
                )
                synthetic.append(HeadlessParticipant(meeting["roomUrl"], media, name=f"S{i}"))
            # A few at a time: the Chromiums' subscriptions take them in a few changes.
            for first in range(0, len(synthetic), JOIN_BATCH):
                batch = synthetic[first : first + JOIN_BATCH]
                await asyncio.gather(*(p.connect(timeout=90) for p in batch))
            room = server.rooms[room_name]
            assert room.capacity == people and room.janus is not None
            assert len(list(room._people())) == people
            ids = [await participant_id(p) for p in pages]
            # Each Chromium sees the other (through Janus, at the layer that fits 24 tiles).
            await wait_remote_tile(pages[0], ids[1])
            await wait_remote_tile(pages[1], ids[0])
            await pages[0].evaluate("window.recfw.startRecording()")
            await wait_status(pages[0], "started", timeout=60)
            session = room.engine.current_session
            await wait_for(lambda: session.position > 6.0, 90, what="6 s recorded")
            await shots(pages[0], "janus-25-people")
            await pages[0].evaluate("window.recfw.stopRecording()")
            await wait_status(pages[0], "stopped", timeout=90)
            for browser in browsers:
                await browser.close()
            browsers.clear()
    finally:
        for p in synthetic:
            await p.close()
        for browser in browsers:
            await browser.close()
    session = await _stored(server, room_name)
    path = Path("recordings") / session.file_name
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert frames and frames[0].shape == (720, 1280, 3)
    # The active grid: [server] maxTiles (16) cells, 15 people and "+10 more".
    cells = grid(TILES, 1280, 720)
    rects = [fit(W, H, cell) for cell in cells[:-1]]
    last = frames[-len(frames) // 3 :]  # everyone is in by then
    colours = [_tile_colour(last[-1], r) for r in rects]
    red = [i for i, c in enumerate(colours) if _is(c, RED)]
    blue = [i for i, c in enumerate(colours) if _is(c, BLUE)]
    grey = [i for i, c in enumerate(colours) if _is(c, GREY)]
    assert len(red) == 1 and len(blue) == 1, colours
    assert len(grey) == TILES - 1 - chromiums, colours
    # The Chromium tiles are live: their moving square changes the picture between frames.
    for index in red + blue:
        r = rects[index]
        tiles = [f[r.y : r.y + r.h, r.x : r.x + r.w].astype(np.int16) for f in last]
        changes = [np.abs(a - b).mean() for a, b in zip(tiles, tiles[1:], strict=False)]
        moving = sum(1 for c in changes if c > 1.0)
        assert moving >= LIVE_CHANGES, (index, moving, len(changes))
