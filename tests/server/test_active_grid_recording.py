"""A group room of 20 synthetic participants recorded as the active grid (no browser).

The room server forwards; the recorder (in the server's process here) composites
a 1280x720 grid of 16 cells: 15 people and "+5 more". Who has a tile follows
the rule of :mod:`recfw.media.activegrid`: join order until someone speaks, then
the most recent speaker replaces the least active tile. The video of people
without a tile is never decoded.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import av
import numpy as np
from recfw.config import parse_config
from recfw.media.layout import fit, grid
from recfw.server import RoomServer
from recfw.server.room import Room
from recfw.testing.synthetic import SyntheticCrowd, SyntheticParticipant, identify

HOST_SECRET = "active-grid-host-secret"

W, H, FPS = 320, 240, 8
PEOPLE = 20
TILES = 16


async def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def _cells(path: Path) -> list[tuple[float, list[int | None], np.ndarray]]:
    """For each decoded frame: its time, who each of the 16 cells shows, the last cell."""
    cells = grid(TILES, 1280, 720)
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (1280, 720)
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            who = []
            for cell in cells[:-1]:
                r = fit(W, H, cell)
                who.append(identify(rgb[r.y : r.y + r.h, r.x : r.x + r.w]))
            last = cells[-1]
            out.append((frame.time, who, rgb[last.y : last.y + last.h, last.x : last.x + last.w]))
    return out


async def test_twenty_people_record_as_the_active_grid_and_the_speaker_gets_a_tile(
    builtin_plugins, tmp_path
):
    config = parse_config(
        {
            "recording": {
                "type": "local",
                "startTrigger": "none",
                "destination": {"provider": "local", "bucket": str(tmp_path / "rec")},
            },
            # the cheapest x264 preset: this test is about who is shown, not the encoder
            "encoder": {"preset": "ultrafast"},
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "iceAddresses": ["127.0.0.1"],
                "maxPeople": 25,
                "videoFps": FPS,
                "maxTiles": TILES,
                "minTileSeconds": 2,
            },
        },
        environ={},
    )
    server = RoomServer(config, builtin_plugins, host_secret=HOST_SECRET, spool_dir=tmp_path / "s")
    await server.start()
    server.rooms["big"] = Room(
        "big", server.settings, config, builtin_plugins, loopback_only=True, mode="group"
    )
    room = server.rooms["big"]
    visitor_link, host_link = server.links("big")
    options = {"width": W, "height": H, "fps": FPS}
    host = SyntheticParticipant(host_link, 0, **options)
    crowd = SyntheticCrowd(visitor_link, 15, first=1, **options)
    # The last four join after the others: ranked last, so without a tile at the start.
    late = [SyntheticParticipant(visitor_link, i, **options) for i in range(16, PEOPLE)]
    everyone = [host, *crowd, *late]
    try:
        await host.connect(30)
        await crowd.join(60)
        for p in late:
            await p.connect(30)
        assert len(room.clients) == PEOPLE and room.capacity == 25
        ids = {p.result.participant_id: p.index for p in everyone}
        await _wait_for(
            lambda: all(
                c.peer.video is not None and c.peer.video.frames for c in room.clients.values()
            ),
            60,
            "everyone's video at the server",
        )

        await host.command("start_recording")
        engine = room.engine
        await _wait_for(
            lambda: engine.sessions and engine.sessions[-1].status == "recording", 60, "recording"
        )
        session = engine.sessions[-1]
        recorder = session._recorder
        assert recorder.grid.max_tiles == TILES and recorder.grid.min_seconds == 2
        # Nobody spoke: the first 15 by join order have a tile; 15..19 do not.
        assert sorted(ids[p] for p in recorder.shown) == list(range(15))
        # Waits are on the recording's own clock (how far it has got), with wall-clock
        # limits generous enough for a machine that records slower than real time.
        await _wait_for(lambda: recorder.position > 2.5, 300, "2.5 s of recording")

        speaker = late[-1]  # number 19, joined last
        speaker_id = speaker.result.participant_id
        spoke_at = recorder.position  # the output so far has no tone of 19's
        speaker.speak()
        speaking_from = recorder.now()  # the tone is placed from here on
        await _wait_for(
            lambda: recorder.position > speaking_from + 3.0, 300, "the output past the tone"
        )
        assert speaker_id in recorder.shown
        shown_at = recorder.choice.since[speaker_id]
        await _wait_for(lambda: recorder.position > shown_at + 2.0, 300, "2 s of the speaker")
        shown = sorted(ids[p] for p in recorder.shown)
        # Video of people who never had a tile was not decoded at all.
        tracks = {
            ids[c.id]: t
            for c in room.clients.values()
            for t in c.peer._recorder_tracks
            if t.kind == "video"
        }
        await host.command("stop_recording")
        await engine.wait_stored()
    finally:
        for p in everyone:
            await p.close()
        await server.close()

    assert session.status == "stored", session.error
    # 19 spoke: it took the tile of the least active (14: joined last among the shown).
    assert shown == [*range(14), 19], shown
    # as soon as the tone is in the output (every tile is past minTileSeconds by then)
    assert spoke_at <= shown_at <= speaking_from + 1.0
    for never_shown in (15, 16, 17, 18):
        assert tracks[never_shown].decoded == 0, never_shown
        assert tracks[never_shown].paused
    assert tracks[19].decoded > 0 and not tracks[19].paused
    assert all(tracks[i].decoded > 0 for i in range(14))

    frames = _cells(Path(session.stored.location.removeprefix("file://")))
    assert frames and frames[-1][0] > shown_at + 1.5
    before = [who for t, who, _ in frames if 1.0 <= t < spoke_at]
    after = [who for t, who, _ in frames if shown_at + 1.0 <= t]
    assert before and after
    # Before the speaker spoke: the first 15 by join order, each in its own cell.
    for who in before:
        assert 19 not in who
        assert {w for w in who if w is not None} <= set(range(15))
    seen_before = [w for who in before for w in who if w is not None]
    assert set(seen_before) == set(range(15)), sorted(set(seen_before))
    # After: 19 is in the cell where 14 was; everyone else kept their cells.
    cell_of_14 = next(who.index(14) for who in before if 14 in who)
    for who in after:
        assert 14 not in who and who[cell_of_14] in (19, None)
    assert sum(who[cell_of_14] == 19 for who in after) >= 0.8 * len(after)
    # The last cell is the "+5 more" label: grey, with white text, no participant.
    for _, _, label in frames[-5:]:
        assert identify(label) is None
        grey = np.median(label.reshape(-1, 3), axis=0)
        assert np.all(np.abs(grey - grey.mean()) < 8) and grey.mean() < 60, grey
        assert (label.min(axis=2) > 200).mean() > 0.01
