"""Recording real WebRTC participants (aiortc, synthetic source) through the room server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import numpy as np
from recfw.media.layout import fit, grid
from recfw.rooms import Participant
from recfw.server.client import HeadlessParticipant

RED, BLUE = (220, 30, 30), (30, 30, 220)


def _synthetic(builtin_plugins, pid: str, color):
    source = builtin_plugins.get("sources", "synthetic")
    options = {"width": 320, "height": 240, "fps": 15, "color": list(color)}
    return source.create(Participant(id=pid, display_name=pid), options)


def _tile_colours(path: Path) -> tuple[list[tuple[float, float, float]], float]:
    """Mean RGB of the two grid tiles over the middle of the file, and the audio RMS."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (1280, 720)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    with av.open(str(path)) as container:
        audio = np.concatenate(
            [f.to_ndarray().reshape(-1) for f in container.decode(container.streams.audio[0])]
        ).astype(np.float64)
    middle = frames[len(frames) // 3 : 2 * len(frames) // 3]
    colours = []
    for cell in grid(2, 1280, 720):
        r = fit(320, 240, cell)
        region = np.stack([f[r.y + 8 : r.y + r.h - 8, r.x + 8 : r.x + r.w - 8] for f in middle])
        colours.append(tuple(float(c) for c in region.reshape(-1, 3).mean(axis=0)))
    scale = 32767 if np.abs(audio).max() <= 1.5 else 1
    return colours, float(np.sqrt(np.mean((audio * scale) ** 2)))


def _is(colour, target) -> bool:
    return all(abs(c - t) < 60 for c, t in zip(colour, target, strict=True))


async def test_two_recordings_in_one_meeting_each_with_both_participants(
    make_server, builtin_plugins
):
    server = await make_server("none")
    visitor_link, host_link = server.links("standup")
    async with (
        HeadlessParticipant(host_link, _synthetic(builtin_plugins, "a", RED), name="A") as host,
        HeadlessParticipant(visitor_link, _synthetic(builtin_plugins, "b", BLUE), name="B"),
    ):
        engine = server.rooms["standup"].engine
        for _ in range(2):
            await host.command("start_recording")
            await engine.wait_started()
            assert engine.status == "started"
            await asyncio.sleep(2.5)
            await host.command("stop_recording")
            assert engine.status == "stopped"
        await engine.wait_stored()
        sessions = list(engine.sessions)
    assert [s.status for s in sessions] == ["stored", "stored"], [s.error for s in sessions]
    for session in sessions:
        path = Path(session.stored.location.removeprefix("file://"))
        colours, rms = _tile_colours(path)
        # Each participant's own picture is in one of the two tiles (the recorder in none).
        assert any(_is(c, RED) for c in colours) and any(_is(c, BLUE) for c in colours), colours
        assert rms > 300, rms


async def test_prompt_declined_records_nothing(make_server, builtin_plugins):
    server = await make_server("prompt")
    visitor_link, host_link = server.links("standup")
    async with (
        HeadlessParticipant(host_link, _synthetic(builtin_plugins, "a", RED), name="A") as host,
        HeadlessParticipant(visitor_link, _synthetic(builtin_plugins, "b", BLUE), name="B"),
    ):
        engine = server.rooms["standup"].engine
        assert engine.state.prompted == host.result.participant_id
        await host.command("prompt_answer", accepted=False)
        assert engine.state.prompted is None
        await asyncio.sleep(0.5)
        assert engine.status == "idle" and not engine.sessions


async def test_a_participant_joining_mid_recording_gets_a_tile(make_server, builtin_plugins):
    green = (30, 200, 30)
    server = await make_server("none")
    visitor_link, host_link = server.links("standup")
    async with (
        HeadlessParticipant(host_link, _synthetic(builtin_plugins, "a", RED), name="A") as host,
        HeadlessParticipant(visitor_link, _synthetic(builtin_plugins, "b", BLUE), name="B"),
    ):
        engine = server.rooms["standup"].engine
        await host.command("start_recording")
        await asyncio.sleep(1.0)
        late = HeadlessParticipant(visitor_link, _synthetic(builtin_plugins, "c", green), name="C")
        async with late:
            late_peer = server.rooms["standup"].clients[late.result.participant_id].peer
            await asyncio.sleep(2.5)
            # Only the copies the recorder reads are live: one video and one audio.
            assert len(late_peer._recorder_tracks) == 2
            assert all(t.readyState == "live" for t in late_peer._recorder_tracks)
            await host.command("stop_recording")
        await engine.wait_stored()
    (session,) = engine.sessions
    assert session.status == "stored", session.error
    path = Path(session.stored.location.removeprefix("file://"))
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    end = frames[-20:-5]  # the last half second: three people, a 3-tile grid
    colours = []
    for cell in grid(3, 1280, 720):
        r = fit(320, 240, cell)
        region = np.stack([f[r.y + 8 : r.y + r.h - 8, r.x + 8 : r.x + r.w - 8] for f in end])
        colours.append(tuple(float(c) for c in region.reshape(-1, 3).mean(axis=0)))
    for target in (RED, BLUE, green):
        assert any(_is(c, target) for c in colours), (target, colours)
