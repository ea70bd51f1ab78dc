"""A recorder process keeps recording when a person's media stops, and when its own does.

The media is cut on the room server's end (:mod:`recfw.testing.netcut`): first a
person's (a stall: they are told, reconnect, and their tile is labelled
RECONNECTING in the file meanwhile), then the recorder's own connection (every
datagram dropped, so the server's consent checks expire; the consent interval is
shortened so that takes about 2 s): the worker makes a new connection on the same
WebSocket and records on into the same file, everyone in the same tiles.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aioice.ice
import av
from recfw.media.layout import fit, grid
from recfw.rooms import Role
from recfw.server import consent
from recfw.server.client import HeadlessParticipant
from recfw.server.liveness import CAUSE_CONSENT
from recfw.testing.media import has_reconnecting_label
from recfw.testing.netcut import cut_incoming

from .conftest import BLUE, RED, is_colour, synthetic
from .test_recorder_process import _command, _until


def _tiles(path: Path) -> list[list[tuple[tuple[float, ...], bool]]]:
    """Per frame, per tile of the 2-tile grid: (mean RGB of the picture, labelled?)."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            row = []
            for cell in grid(2, rgb.shape[1], rgb.shape[0]):
                r = fit(320, 240, cell)
                inner = rgb[r.y + 8 : r.y + r.h - 8, r.x + 8 : r.x + r.w - 8]
                colour = tuple(float(c) for c in inner.reshape(-1, 3).mean(axis=0))
                row.append((colour, has_reconnecting_label(rgb, cell)))
            out.append(row)
    return out


async def test_the_recorder_survives_a_person_and_itself_losing_media(
    supervised_server, builtin_plugins, monkeypatch, caplog
):
    caplog.set_level(logging.INFO)
    server = await supervised_server("none", mediaTimeout=2)
    visitor_link, host_link = server.links("standup")
    async with (
        HeadlessParticipant(host_link, synthetic(builtin_plugins, "a", RED), name="A") as a,
        HeadlessParticipant(visitor_link, synthetic(builtin_plugins, "b", BLUE), name="B"),
    ):
        room = server.rooms["standup"]
        engine = room.engine
        a_id = a.result.participant_id
        await _command(a, engine, "start_recording", "started")
        session = engine.sessions[-1]

        def recorder():
            found = [c for c in room.clients.values() if c.participant.role == Role.RECORDER]
            return found[0] if found else None

        await _until(lambda: recorder() is not None and recorder().peer.negotiated)
        rec = recorder()
        await _until(lambda: rec.peer.pc.connectionState == "connected")
        await asyncio.sleep(3.0)

        # 1. A person's media stalls: the worker is told, labels the tile, A comes back.
        old = room.clients[a_id].peer
        cut_incoming(old.pc, "media")
        await _until(lambda: room.clients[a_id].peer is not old, timeout=60)
        await _until(lambda: a_id not in room.reconnecting, timeout=60)
        await asyncio.sleep(3.0)

        # 2. The recorder's own connection dies (consent expires on the server's end).
        # The server's consent runs out after 5 s here, long before the recorder's own
        # (30 s: its checks go unanswered too), so the server is the one that notices.
        monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.3)
        monkeypatch.setattr(consent, "CONSENT_TIMEOUT", 5.0)
        old_rec = rec.peer
        cut_incoming(old_rec.pc, "all")
        await _until(lambda: old_rec.watch.lost is not None, timeout=60)
        await _until(
            lambda: rec.peer is not old_rec and rec.peer.pc.connectionState == "connected",
            timeout=60,
        )
        monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 5)
        monkeypatch.setattr(consent, "CONSENT_TIMEOUT", 30.0)
        await asyncio.sleep(4.0)
        await _command(a, engine, "stop_recording", "stopped")
        await engine.wait_stored()
    assert session.status == "stored", session.error
    assert old_rec.watch.lost == CAUSE_CONSENT
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "recfw.server.room"
    ]
    assert len(warnings) == 2, warnings  # one per loss, each with its cause
    assert a_id in warnings[0] and "no media packets" in warnings[0], warnings
    assert rec.id in warnings[1] and "ICE consent expired" in warnings[1], warnings

    frames = _tiles(Path(session.stored.location.removeprefix("file://")))
    # A is in one tile throughout (found over the whole file: its first seconds may
    # still show a placeholder on a slow machine).
    (a_tile,) = {i for row in frames for i in range(2) if is_colour(row[i][0], RED)}
    labelled = [n for n, row in enumerate(frames) if row[a_tile][1]]
    assert labelled, "A's tile was never labelled RECONNECTING"
    # After the recorder's own reconnection (the last fifth of the file), both people are
    # in their own tiles again, live.
    tail = frames[-len(frames) // 5 : -5]
    assert sum(is_colour(row[a_tile][0], RED) for row in tail) >= len(tail) // 2
    assert sum(is_colour(row[1 - a_tile][0], BLUE) for row in tail) >= len(tail) // 2
