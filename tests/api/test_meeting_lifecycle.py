"""Meetings survive restarts (rooms open from the database with their own settings and
mode), close at their end date (recording stored, participants told), are deleted an
hour later, and a long-running server keeps a bounded number of closed rooms."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import av
from api_helpers import call
from recfw.rooms import Participant
from recfw.server.app import CLOSED_ROOMS_KEPT
from recfw.server.client import HeadlessParticipant
from recfw.times import iso_utc


def _synthetic(builtin_plugins, pid: str):
    source = builtin_plugins.get("sources", "synthetic")
    options = {"width": 320, "height": 240, "fps": 15, "color": [40, 200, 40]}
    return source.create(Participant(id=pid, display_name=pid), options)


async def join_once(base_url: str, room: str) -> dict:
    """Join ``room`` over the WebSocket and return the first answer (welcome or error)."""
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{base_url}/{room}/ws") as ws,
    ):
        await ws.send_json({"type": "join", "name": "V"})
        return await ws.receive_json(timeout=10)


async def test_a_restarted_server_knows_every_meeting(api_server, clock):
    first = await api_server("automatic")
    body = {
        "endDate": iso_utc(clock.now + timedelta(hours=1)),
        "roomMode": "group",
        "recording": {"type": "cloud", "destination": None, "startTrigger": "prompt"},
    }
    created = await call("POST", first.base_url + "/v1/meetings", body=body)
    assert created.status == 201, created.body
    await first.close()

    second = await api_server("automatic")  # same database, a new process' state
    meeting = await call("GET", f"{second.base_url}/v1/meetings/{created.body['meetingId']}")
    assert meeting.status == 200 and meeting.body["roomMode"] == "group"
    room = created.body["roomName"][1:]
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{second.base_url}/{room}/ws") as ws,
    ):
        await ws.send_json({"type": "join", "name": "V"})
        welcome = await ws.receive_json(timeout=10)
        assert welcome["type"] == "welcome" and welcome["trigger"] == "prompt"  # its own
        opened = second.rooms[room]
        assert opened.mode == "group"  # the room server applies the mode's capacity
        assert opened.engine.meeting_id == created.body["meetingId"]
    adhoc = await join_once(second.base_url, "adhoc")
    assert adhoc["trigger"] == "automatic"  # the organization default
    await asyncio.sleep(0.2)
    assert room not in second.rooms  # left: the room closed, the meeting stays
    listed = await call("GET", second.base_url + "/v1/meetings")
    assert [m["meetingId"] for m in listed.body["results"]] == [created.body["meetingId"]]


async def test_a_meeting_ends_on_time_and_is_deleted_an_hour_later(
    api_server, clock, builtin_plugins, control_db
):
    server = await api_server("none")
    end = clock.now + timedelta(minutes=30)
    body = {"endDate": iso_utc(end), "fields": ["hostRoomUrl"]}
    created = await call("POST", server.base_url + "/v1/meetings", body=body)
    assert created.status == 201
    meeting_url = f"{server.base_url}/v1/meetings/{created.body['meetingId']}"
    name = created.body["roomName"][1:]

    host = HeadlessParticipant(
        created.body["hostRoomUrl"], _synthetic(builtin_plugins, "h"), name="H"
    )
    async with host:
        engine = server.rooms[name].engine
        await host.command("start_recording")
        await asyncio.sleep(2.0)
        assert engine.status == "started"
        assert await server.meeting_clock.sweep() == ([], [])  # not yet
        clock.now = end
        closed, deleted = await server.meeting_clock.sweep()
        assert closed == [name] and deleted == []
        (session,) = engine.sessions  # stopped and stored before the sweep returned
        assert session.status == "stored", session.error
        await asyncio.sleep(0.3)
        assert "this meeting has ended" in host.result.errors
    assert name not in server.rooms
    path = Path(session.stored.location)
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) > 10

    refused = await join_once(server.base_url, name)
    assert refused == {"type": "error", "command": "join", "message": "this meeting has ended"}
    assert (await call("GET", meeting_url)).status == 200  # kept for an hour

    clock.advance(minutes=59)
    assert await server.meeting_clock.sweep() == ([], [])
    clock.advance(minutes=2)
    closed, deleted = await server.meeting_clock.sweep()
    assert deleted == [created.body["meetingId"]]
    assert (await call("GET", meeting_url)).status == 404
    assert (await call("DELETE", meeting_url)).status == 204
    refused = await join_once(server.base_url, name)
    assert refused["message"] == "this meeting has been deleted"


class _Engine:
    def __init__(self, *statuses: str):
        self.sessions = [SimpleNamespace(status=s) for s in statuses]

    async def wait_stored(self) -> None:
        return None


class _Room:
    """A closed room as the server keeps it (only its recordings matter here)."""

    def __init__(self, *statuses: str):
        self.engine = _Engine(*statuses)


async def test_closed_rooms_are_pruned(api_server):
    server = await api_server()
    running = _Room("recording")
    server._keep_closed(running)
    for _ in range(CLOSED_ROOMS_KEPT * 3):
        server._keep_closed(_Room("stored", "failed"))
    assert len(server.closed_rooms) == CLOSED_ROOMS_KEPT + 1
    assert running in server.closed_rooms  # not finished: never dropped
    never_recorded = _Room()
    server._keep_closed(never_recorded)
    assert never_recorded not in server.closed_rooms
