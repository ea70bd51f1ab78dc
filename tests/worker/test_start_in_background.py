"""Starting a recording never holds the room: joins go on while the recorder starts.

A real recorder process (``recfw worker``) is held before it records by SIGSTOP (a
real mechanism, not a mock of the engine's lock), so "the recording is not running
yet" holds however fast or slow the machine is; SIGCONT lets it go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from recfw.rooms import Role
from recfw.server.client import HeadlessParticipant
from recfw.session import SessionStatus

from .conftest import BLUE, RED, synthetic
from .test_active_grid_worker import _until


async def _recording_alone(engine, session) -> None:
    """The held recording records, and it is the room's only one."""
    await _until(lambda: engine.status == "started", what="the recording")
    assert engine.sessions == [session] and session.status == SessionStatus.RECORDING
    await asyncio.sleep(1.0)


async def _stored_once(engine) -> None:
    await _until(lambda: engine.status == "stopped", what="the stop")
    await engine.wait_stored()
    assert [s.status for s in engine.sessions] == [SessionStatus.STORED]


@contextlib.asynccontextmanager
async def _held_recorder(engine):
    """The starting recording's recorder process, frozen until the block ends."""
    await _until(
        lambda: engine.current_session is not None and engine.current_session.pid,
        what="the recorder process",
    )
    session = engine.current_session
    os.kill(session.pid, signal.SIGSTOP)
    try:
        yield session
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(session.pid, signal.SIGCONT)


async def test_joins_go_on_while_the_recorder_starts(supervised_server, builtin_plugins):
    server = await supervised_server("automatic")
    link, _ = server.links("standup")
    a = HeadlessParticipant(link, synthetic(builtin_plugins, "a", RED), name="A")
    b = HeadlessParticipant(link, synthetic(builtin_plugins, "b", BLUE), name="B")
    try:
        await a.connect(timeout=60)  # A's join starts the recording
        room = server.rooms["standup"]
        engine = room.engine
        async with _held_recorder(engine) as session:
            assert engine.status == "starting"
            # B joins and is welcomed while the recorder is frozen: not recording yet.
            await b.connect(timeout=60)
            assert session.status == SessionStatus.STARTING
            assert not any(c.participant.role == Role.RECORDER for c in room.clients.values())
            assert sum(1 for c in room.clients.values() if c.participant.is_person) == 2
        await _recording_alone(engine, session)
    finally:
        await a.close()
        await b.close()
    await _stored_once(engine)


async def test_a_stop_then_a_start_while_starting_make_one_recording(
    supervised_server, builtin_plugins
):
    server = await supervised_server("none")
    _, host_link = server.links("manual")
    host = HeadlessParticipant(host_link, synthetic(builtin_plugins, "h", RED), name="H")
    try:
        await host.connect(timeout=60)
        engine = server.rooms["manual"].engine
        await host.command("start_recording")  # answered at once: "starting"
        async with _held_recorder(engine) as session:
            await host.command("stop_recording")
            assert engine.status == "stopping" and session.status == SessionStatus.STARTING
            await host.command("start_recording")  # the stop that was due is withdrawn
            assert engine.status == "starting" and engine.sessions == [session]
        await _recording_alone(engine, session)
        await host.command("stop_recording")
    finally:
        await host.close()
    await _stored_once(engine)


async def test_a_stop_while_starting_stops_the_recording_once_it_started(
    supervised_server, builtin_plugins
):
    server = await supervised_server("automatic")
    link, _ = server.links("brief")
    a = HeadlessParticipant(link, synthetic(builtin_plugins, "a", RED), name="A")
    try:
        await a.connect(timeout=60)
        engine = server.rooms["brief"].engine
        async with _held_recorder(engine) as session:
            await a.close()  # the last person leaves before the recorder records
            await _until(lambda: engine.status == "stopping", 30, "the stop to be due")
            assert session.status == SessionStatus.STARTING
    finally:
        await a.close()
    await _until(lambda: engine.status == "stopped", what="the stop")
    await engine.wait_stored()
    assert engine.sessions == [session]
    # Its recorder joined the emptied room (kept open while the recording starts),
    # recorded and was stopped at once: a short file, stored; not a failure.
    assert session.status == SessionStatus.STORED, (session.status, session.error)
    # Its recorder process is gone: no recorder keeps running in an empty room.
    await _until(lambda: session.process.returncode is not None, 60, "the recorder to exit")


async def test_someone_back_while_starting_finds_the_same_room_still_recording(
    supervised_server, builtin_plugins
):
    server = await supervised_server("automatic")
    link, _ = server.links("back")
    a = HeadlessParticipant(link, synthetic(builtin_plugins, "a", RED), name="A")
    again = HeadlessParticipant(link, synthetic(builtin_plugins, "a2", RED), name="A again")
    try:
        await a.connect(timeout=60)
        room = server.rooms["back"]
        engine = room.engine
        async with _held_recorder(engine) as session:
            await a.close()  # the last person leaves: the stop is due once it records
            await _until(lambda: engine.status == "stopping", 30, "the stop to be due")
            # The room is kept while its recording starts: the same room, and the
            # trigger's new start withdraws the stop that was due.
            assert server.rooms.get("back") is room
            await again.connect(timeout=60)
            assert server.rooms["back"] is room and engine.status == "starting"
        await _recording_alone(engine, session)
    finally:
        await a.close()
        await again.close()
    await _stored_once(engine)


async def test_a_meeting_ended_while_starting_stores_its_short_recording(
    supervised_server, builtin_plugins
):
    server = await supervised_server("automatic")
    link, _ = server.links("ended")
    a = HeadlessParticipant(link, synthetic(builtin_plugins, "a", RED), name="A")
    try:
        await a.connect(timeout=60)
        engine = server.rooms["ended"].engine
        async with _held_recorder(engine) as session:
            ending = asyncio.ensure_future(server.end_room("ended", "this meeting has ended"))
            # The person is told and hung up on before the recording is waited for.
            await asyncio.wait_for(asyncio.shield(a._reader), 60)
            assert "this meeting has ended" in a.result.errors
            assert not ending.done() and session.status == SessionStatus.STARTING
        await asyncio.wait_for(ending, 180)  # the recorder joined the closing room
    finally:
        await a.close()
    assert engine.sessions == [session]
    assert session.status == SessionStatus.STORED, (session.status, session.error)
    assert "ended" not in server.rooms
    await _until(lambda: session.process.returncode is not None, 60, "the recorder to exit")
