"""Rooms on Janus (``[rooms] backend = "janus"``): a real Janus on loopback, a real recorder
process subscribed with one multistream subscription, files decoded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from recfw.config import parse_config
from recfw.secrets import Secret
from recfw.server import RoomServer
from recfw.server.client import HeadlessParticipant
from recfw.server.janus import JanusSession

from .conftest import BLUE, RED, is_colour, room_servers, synthetic, tile_colours


def janus_config(trigger: str, janus, **rooms) -> object:
    return parse_config(
        {
            "recording": {
                "type": "local",
                "startTrigger": trigger,
                "destination": {"provider": "local", "bucket": "recordings", "fileFormat": "mkv"},
            },
            "server": {"host": "127.0.0.1", "port": 0, "iceAddresses": ["127.0.0.1"]},
            "rooms": {
                "backend": "janus",
                "janusUrl": janus.url,
                "janusApiSecret": janus.api_secret,
                **rooms,
            },
        },
        environ={},
    )


@pytest.fixture
async def janus_room_server(builtin_plugins, tmp_path, monkeypatch, janus_server):
    """``await janus_room_server(trigger, **rooms)``: a room server whose rooms are on Janus,
    recording in recorder processes, with a SQLite control plane."""
    monkeypatch.chdir(tmp_path)

    def config_of(trigger: str = "automatic", **rooms) -> object:
        return janus_config(trigger, janus_server, **rooms)

    async with room_servers(builtin_plugins, tmp_path, config_of) as make:
        yield make


async def janus_has_room(janus_server, room_id: str) -> bool:
    """Whether Janus has the VideoRoom ``room_id`` now (asked over its API)."""
    session = await JanusSession.connect(janus_server.url, Secret(janus_server.api_secret))
    try:
        handle = await session.attach()
        data, _ = await handle.message({"request": "exists", "room": room_id})
        return bool(data["exists"])
    finally:
        await session.close()


async def _stored(server: RoomServer, room: str):
    for _ in range(600):
        if room not in server.rooms and any(r.name == room for r in server.closed_rooms):
            break
        await asyncio.sleep(0.1)
    (closed,) = [r for r in server.closed_rooms if r.name == room]
    await asyncio.wait_for(closed.engine.wait_stored(), 90)
    (session,) = closed.engine.sessions
    assert session.status == "stored", session.error
    return session


async def test_janus_room_is_recorded_with_a_tile_per_person(
    janus_room_server, builtin_plugins, janus_server
):
    server = await janus_room_server("automatic-2nd-participant")
    link, _ = server.links("standup")
    red = HeadlessParticipant(link, synthetic(builtin_plugins, "red", RED), name="Red")
    blue = HeadlessParticipant(
        link, synthetic(builtin_plugins, "blue", BLUE), name="Blue", tap_received=True
    )
    await red.connect(timeout=30)
    await blue.connect(timeout=30)
    assert red.backend == blue.backend == "janus"
    room = server.rooms["standup"]
    assert room.janus is not None and await janus_has_room(janus_server, room.janus.room_id)
    # Blue receives Red's media through Janus (one subscription), without decoding it.
    for _ in range(300):
        if blue.received and blue.received[0][0].frames > 10:
            break
        await asyncio.sleep(0.1)
    assert blue.received and blue.received[0][0].frames > 10
    for _ in range(600):
        if room.engine.status == "started" and room.engine.current_session.position > 4.0:
            break
        await asyncio.sleep(0.1)
    assert room.engine.status == "started"
    await blue.close()
    await red.close()
    session = await _stored(server, "standup")
    path = Path("recordings") / session.file_name
    colours = tile_colours(path)  # checks 1280x720 too
    assert any(is_colour(c, RED) for c in colours), colours
    assert any(is_colour(c, BLUE) for c in colours), colours
    # The recfw room's Janus room is gone with it.
    assert not await janus_has_room(janus_server, room.janus.room_id)


async def test_an_unreachable_janus_refuses_the_join_with_the_reason(
    janus_room_server, builtin_plugins
):
    server = await janus_room_server("none", janusUrl="ws://127.0.0.1:9")
    link, _ = server.links("standup")
    guest = HeadlessParticipant(link, synthetic(builtin_plugins, "red", RED), name="Red")
    with pytest.raises(Exception, match=r"cannot reach Janus at ws://127\.0\.0\.1:9"):
        await guest.connect(timeout=20)
    assert "standup" not in server.rooms


async def test_a_wrong_api_secret_is_refused_without_showing_it(janus_room_server, builtin_plugins):
    server = await janus_room_server("none", janusApiSecret="not-the-secret")
    link, _ = server.links("standup")
    guest = HeadlessParticipant(link, synthetic(builtin_plugins, "red", RED), name="Red")
    with pytest.raises(Exception, match="Unauthorized") as caught:
        await guest.connect(timeout=20)
    assert "not-the-secret" not in str(caught.value)


def test_the_recorder_takes_the_smallest_layer_as_wide_as_a_composite_tile():
    from recfw.media.layout import grid
    from recfw.server.janus_room import recorder_substream

    # 1280 wide cameras: layers 320, 640 and 1280 wide; 16 tiles at most
    layers = {n: recorder_substream(n, 16, 1280) for n in (1, 2, 4, 5, 9, 10, 16, 25)}
    assert layers == {1: 2, 2: 1, 4: 1, 5: 1, 9: 1, 10: 0, 16: 0, 25: 0}
    for n, layer in layers.items():
        tile = grid(min(n, 16), 1280, 720)[0].w
        width = 1280 >> (2 - layer)
        assert width >= tile * 0.95  # never scaled up by more than a few pixels
        assert layer == 0 or (width >> 1) < tile * 0.95  # and the next smaller is too small
    assert recorder_substream(25, 16, 640) == 1  # smaller cameras: the layer that fits
    assert recorder_substream(25, 49, 1280) == 0 and recorder_substream(3, 4, 1920) == 1
