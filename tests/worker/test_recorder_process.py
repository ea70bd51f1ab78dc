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


async def _until(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


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
        await host.command("start_recording")
        assert engine.status == "started"
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
        await host.command("stop_recording")
        await engine.wait_stored()
    assert all(p.get("role") != "recorder" for p in slot_peers), slot_peers
    assert session.status == "stored", session.error
    path = Path(session.stored.location.removeprefix("file://"))
    colours = tile_colours(path, 2)
    assert any(is_colour(c, RED) for c in colours) and any(is_colour(c, BLUE) for c in colours), (
        colours
    )
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
        await host.command("start_recording")
        for _ in range(kills):
            await _until(lambda: engine.status == "started" and engine.current_session is not None)
            session = engine.current_session
            assert isinstance(session, SupervisedSession)
            started = time.monotonic()
            await asyncio.sleep(rng.uniform(1.5, 4.0))
            os.kill(session.pid, signal.SIGKILL)
            recorded = time.monotonic() - started
            killed.append((session, recorded))
            # Noticed within seconds; a new recorder records on into a new file.
            await _until(lambda s=session: s.status == "failed", timeout=10)
            await _until(lambda s=session: engine.sessions[-1] is not s, timeout=30)
        await _until(lambda: engine.status == "started" and engine.current_session is not None)
        await asyncio.sleep(2.0)
        await host.command("stop_recording")
        await engine.wait_stored()
        # The room server is still up.
        async with aiohttp.ClientSession() as http, http.get(server.base_url + "/") as response:
            assert response.status == 200
        # A later recording in the same room works.
        await host.command("start_recording")
        await asyncio.sleep(2.5)
        await host.command("stop_recording")
        await engine.wait_stored()
    names = [s.file_name for s in engine.sessions]
    assert len(set(names)) == len(names), names  # each recorder wrote its own file
    assert [s.status for s in engine.sessions[kills:]] == ["stored", "stored"], [
        s.error for s in engine.sessions
    ]
    with server.control.db.session() as s:
        rows = {r.recording_id: r for r in s.scalars(select(Recording))}
        failed_events = [e for e in s.scalars(select(OutboxEvent)) if e.type == "recording.failed"]
    kept = [(decoded_seconds(Path(s.kept_at)), recorded) for s, recorded in killed]
    for (video, audio), recorded in kept:
        print(f"kill after {recorded:.2f} s: {video:.2f} s video, {audio:.2f} s audio kept")
    for session, recorded in killed:
        assert session.status == "failed"
        assert "SIGKILL" in session.error, session.error
        assert rows[session.recording_id].status == "kept"
        video, audio = decoded_seconds(Path(session.kept_at))
        # All but about 1 s of what was recorded (the output runs 0.3 s behind).
        assert video >= recorded - 1.5, (video, recorded)
        assert audio >= recorded - 1.5, (audio, recorded)
    assert len(failed_events) >= kills
