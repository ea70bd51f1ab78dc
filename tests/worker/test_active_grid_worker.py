"""A recorder process records the active grid (``[server] maxTiles`` reaches it in the job)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import av
import numpy as np
import pytest
from recfw.config import parse_config
from recfw.control.crypto import Cipher, new_key
from recfw.control.db import Database
from recfw.control.events import ControlEvents
from recfw.media.layout import fit, grid
from recfw.server import RoomServer
from recfw.server.ice import unrestrict_host_addresses
from recfw.testing.synthetic import SyntheticParticipant, identify
from recfw.worker.supervisor import SupervisedSession

W, H, FPS = 320, 240, 10


async def _until(predicate, timeout: float = 120.0, what: str = "a condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.fixture
async def server(builtin_plugins, tmp_path, monkeypatch):
    """A room server recording in ``recfw worker`` processes, 3 tiles at most."""
    monkeypatch.chdir(tmp_path)
    db = Database(
        f"sqlite:///{tmp_path}/recfw.db", Cipher([new_key().encode()], "test"), source="test"
    )
    db.upgrade()
    config = parse_config(
        {
            "recording": {
                "type": "local",
                "startTrigger": "none",
                "destination": {"provider": "local", "bucket": "recordings", "fileFormat": "mkv"},
            },
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "iceAddresses": ["127.0.0.1"],
                "videoFps": FPS,
                "maxTiles": 3,
                "minTileSeconds": 1,
            },
        },
        environ={},
    )
    room_server = RoomServer(
        config,
        builtin_plugins,
        host_secret="grid-worker-secret",
        spool_dir=tmp_path / "spool",
        db=db,
        control=ControlEvents(db),
        supervise=True,
    )
    await room_server.start()
    yield room_server
    await room_server.close()
    db.dispose()
    unrestrict_host_addresses()


def _who(path: Path) -> list[tuple[float, list[int | None], np.ndarray]]:
    cells = grid(3, 1280, 720)
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (1280, 720)
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            who = []
            for cell in cells[:2]:
                r = fit(W, H, cell)
                who.append(identify(rgb[r.y : r.y + r.h, r.x : r.x + r.w]))
            c = cells[2]
            out.append((frame.time, who, rgb[c.y : c.y + c.h, c.x : c.x + c.w]))
    return out


async def test_a_recorder_process_shows_two_tiles_and_the_speaker_of_four(server):
    visitor_link, host_link = server.links("standup")
    options = {"width": W, "height": H, "fps": FPS}
    people = [SyntheticParticipant(host_link, 0, **options)]
    people += [SyntheticParticipant(visitor_link, i, **options) for i in (1, 2, 3)]
    try:
        for p in people:  # one after the other: the join order is 0, 1, 2, 3
            await p.connect(30)
        ids = [p.result.participant_id for p in people]
        room = server.rooms["standup"]
        engine = room.engine
        assert people[0]._ws is not None
        await people[0]._ws.send_json({"type": "start_recording"})
        await _until(lambda: engine.status == "started", what="the recorder process")
        session = engine.sessions[-1]
        assert isinstance(session, SupervisedSession)
        await _until(lambda: session.position > 2.5, what="2.5 s recorded")
        spoke_at = session.position
        # The room server forwards to the recorder only the video it shows: nothing of
        # 2 and 3 (no tile) past the first moments; their audio all along.
        recorder = next(c for c in room.clients.values() if c.participant.role == "recorder")
        slots = {pid: recorder.peer.slot_of(pid) for pid in ids}
        assert slots[ids[2]].video.held and slots[ids[3]].video.held
        assert not slots[ids[0]].video.held and not slots[ids[1]].video.held
        hidden_sent = slots[ids[2]].video.frames_sent
        audio_sent = slots[ids[2]].audio.frames_sent
        people[3].speak()
        await _until(lambda: session.position > spoke_at + 4.0, what="4 s more")
        assert slots[ids[2]].video.frames_sent == hidden_sent  # still hidden: none
        assert slots[ids[2]].audio.frames_sent > audio_sent  # heard all along
        assert not slots[ids[3]].video.held and slots[ids[1]].video.held  # 3 took 1's tile
        assert slots[ids[3]].video.keyframes_sent >= 1  # forwarded again from a keyframe
        await people[0]._ws.send_json({"type": "stop_recording"})
        await _until(lambda: engine.status == "stopped", what="the stop")
        await engine.wait_stored()
    finally:
        for p in people:
            await p.close()
    assert session.status == "stored", session.error
    # The recorder decodes only the video it shows: 2 never had a tile, 3 only after
    # it spoke (counted by the recorder process's decoders, reported when it stopped).
    decoded = session._final["decodedVideoFrames"]
    print("video frames decoded per person:", [decoded.get(pid) for pid in ids])
    shown = min(decoded[ids[0]], decoded[ids[1]])
    assert shown >= FPS, decoded  # shown from the start: decoded all along
    assert decoded.get(ids[2], 0) <= max(3, 0.1 * shown), decoded  # never shown: ~nothing
    assert decoded.get(ids[3], 0) < 0.9 * decoded[ids[0]], decoded  # shown later: less
    frames = _who(Path(session.stored.location.removeprefix("file://")))
    before = [who for t, who, _ in frames if 1.0 <= t < spoke_at]
    after = [who for t, who, _ in frames if spoke_at + 2.5 <= t]
    assert before and after, (len(frames), spoke_at)
    # 0 and 1 (joined first) have the two tiles; 2 and 3 are "+2 more".
    assert all(set(who) <= {0, 1, None} for who in before), before
    assert sum(who == [0, 1] for who in before) >= 0.8 * len(before), before
    # 3 spoke: it took the cell of 1 (the least active shown); 0 kept its cell.
    assert sum(who == [0, 3] for who in after) >= 0.8 * len(after), after
    for _, _, label in frames[-5:]:
        assert identify(label) is None
        assert (label.min(axis=2) > 200).mean() > 0.01  # the white "+2 more"
