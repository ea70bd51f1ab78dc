"""Recordings made by ``recfw worker`` processes that join the room as its recorder."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

import aiohttp
from recfw.control.models import OutboxEvent, Recording
from recfw.rooms import Role
from recfw.server.client import HeadlessParticipant
from recfw.worker.supervisor import SupervisedSession
from sqlalchemy import select

from .conftest import BLUE, RED, decoded_seconds, is_colour, synthetic, tile_colours


async def _until(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def _command(host: HeadlessParticipant, engine, kind: str, status: str) -> None:
    """Send ``kind`` and wait for the engine's ``status``: starting a recorder process
    (its imports, its WebRTC connection) may take longer than the client's 10 s wait
    for an answer on a loaded machine."""
    assert host._ws is not None
    await host._ws.send_json({"type": kind})
    await _until(lambda: engine.status == status, timeout=120)


async def test_a_recorder_process_records_everyone_and_is_no_tile(
    supervised_server, builtin_plugins
):
    server = await supervised_server("none")
    visitor_link, host_link = server.links("standup")
    slot_peers: list[dict] = []

    def seen(message: dict) -> None:
        if message.get("type") in ("slot", "peer_joined") and message.get("peer"):
            slot_peers.append(message["peer"])

    async with (
        HeadlessParticipant(
            host_link, synthetic(builtin_plugins, "a", RED), name="A", on_message=seen
        ) as host,
        HeadlessParticipant(
            visitor_link, synthetic(builtin_plugins, "b", BLUE), name="B", on_message=seen
        ),
    ):
        room = server.rooms["standup"]
        engine = room.engine
        await _command(host, engine, "start_recording", "started")
        session = engine.sessions[-1]
        assert isinstance(session, SupervisedSession) and session.pid != os.getpid()
        # The recorder process is in the room as a client, with role recorder ...
        await _until(
            lambda: any(c.participant.role == Role.RECORDER for c in room.clients.values())
        )
        await asyncio.sleep(3.0)
        # ... but never counted as a person, never shown to anyone.
        assert len(engine.state.people) == 2
        assert not room.full
        await _command(host, engine, "stop_recording", "stopped")
        await engine.wait_stored()
    assert all(p.get("role") != "recorder" for p in slot_peers), slot_peers
    assert session.status == "stored", session.error
    path = Path(session.stored.location.removeprefix("file://"))
    colours = tile_colours(path, 2)
    assert any(is_colour(c, RED) for c in colours) and any(is_colour(c, BLUE) for c in colours), (
        colours
    )
    # The recorder waited for a picture from each before its clock started: the file
    # shows both people from its very first picture, not placeholders.
    first = tile_colours(path, 2, first=True)
    assert any(is_colour(c, RED) for c in first) and any(is_colour(c, BLUE) for c in first), first
    # The server decoded nothing: no recorder copies were made of anyone's tracks.
    assert all(not c.peer._recorder_tracks for c in room.clients.values() if c.peer is not None)


async def test_a_recorder_token_works_once_and_nothing_else_joins_as_recorder(supervised_server):
    server = await supervised_server("none")
    room = server.room("solo")
    room._recorder_tokens.add("t0ken")
    assert server.recorder_room("solo", "wrong") is None
    assert server.recorder_room("solo", "t0ken") is room
    assert server.recorder_room("solo", "t0ken") is None
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.base_url}/solo/ws") as ws:
        await ws.send_json({"type": "join", "name": "x", "recorderToken": "t0ken"})
        reply = await ws.receive_json(timeout=10)
    assert reply == {
        "type": "error",
        "command": "join",
        "message": "not a valid recorder token for this room",
    }


async def test_sigkill_of_the_recorder_keeps_the_file_and_records_on(
    supervised_server, builtin_plugins
):
    server = await supervised_server("none")
    visitor_link, host_link = server.links("kills")
    rng = random.Random(int(os.environ.get("RECFW_KILL_SEED", "9")))
    kills = 3
    killed: list[tuple[SupervisedSession, float]] = []
    async with (
        HeadlessParticipant(host_link, synthetic(builtin_plugins, "a", RED), name="A") as host,
        HeadlessParticipant(visitor_link, synthetic(builtin_plugins, "b", BLUE), name="B"),
    ):
        engine = server.rooms["kills"].engine
        await _command(host, engine, "start_recording", "started")
        for _ in range(kills):
            await _until(lambda: engine.status == "started" and engine.current_session is not None)
            session = engine.current_session
            assert isinstance(session, SupervisedSession)
            started = time.monotonic()
            await asyncio.sleep(rng.uniform(1.5, 4.0))
            # What was recorded: the worker's last report (every 0.5 s) of how far it
            # had composited; on a loaded machine that may trail the wall clock.
            recorded = session.position
            os.kill(session.pid, signal.SIGKILL)
            wall = time.monotonic() - started
            killed.append((session, recorded, wall))
            # Noticed within seconds; a new recorder records on into a new file.
            await _until(lambda s=session: s.status == "failed", timeout=10)
            await _until(lambda s=session: engine.sessions[-1] is not s, timeout=60)
        await _until(lambda: engine.status == "started" and engine.current_session is not None)
        await asyncio.sleep(2.0)
        await _command(host, engine, "stop_recording", "stopped")
        await engine.wait_stored()
        # The room server is still up.
        async with aiohttp.ClientSession() as http, http.get(server.base_url + "/") as response:
            assert response.status == 200
        # A later recording in the same room works.
        await _command(host, engine, "start_recording", "started")
        await asyncio.sleep(2.5)
        await _command(host, engine, "stop_recording", "stopped")
        await engine.wait_stored()
    names = [s.file_name for s in engine.sessions]
    assert len(set(names)) == len(names), names  # each recorder wrote its own file
    assert [s.status for s in engine.sessions[kills:]] == ["stored", "stored"], [
        s.error for s in engine.sessions
    ]
    with server.control.db.session() as s:
        rows = {r.recording_id: r for r in s.scalars(select(Recording))}
        failed_events = [e for e in s.scalars(select(OutboxEvent)) if e.type == "recording.failed"]
    kept = [(decoded_seconds(Path(s.kept_at)), recorded, wall) for s, recorded, wall in killed]
    for (video, audio), recorded, wall in kept:
        print(
            f"kill after {wall:.2f} s ({recorded:.2f} s recorded): "
            f"{video:.2f} s video, {audio:.2f} s audio kept"
        )
    for session, recorded, _ in killed:
        assert session.status == "failed"
        assert "SIGKILL" in session.error, session.error
        assert rows[session.recording_id].status == "kept"
        video, audio = decoded_seconds(Path(session.kept_at))
        # All but about 1 s of what was recorded: composited up to 0.5 s before the
        # kill, then at most 0.5 s in the encoder queue, x264's lookahead and a 0.5 s
        # Matroska cluster (measured: 0.3-1.4 s on a 2-core machine at load 22).
        assert video >= recorded - 1.5, (video, recorded)
        assert audio >= recorded - 1.5, (audio, recorded)
    assert len(failed_events) >= kills
