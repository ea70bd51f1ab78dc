"""End to end: a meeting made through the API records a real meeting (headless WebRTC
participant); its recording row (written by the engine's events) is listed, linked,
downloaded and deleted through the API."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path

import aiohttp
import av
from api_helpers import call
from recfw.control.events import ControlEvents
from recfw.rooms import Participant
from recfw.server.client import HeadlessParticipant
from recfw.times import iso_utc


def _synthetic(builtin_plugins, pid: str):
    source = builtin_plugins.get("sources", "synthetic")
    options = {"width": 320, "height": 240, "fps": 15, "color": [40, 40, 200]}
    return source.create(Participant(id=pid, display_name=pid), options)


async def test_a_recorded_meeting_is_listed_linked_and_deleted(
    api_server, control_db, clock, builtin_plugins
):
    server = await api_server("automatic", control=ControlEvents(control_db))
    body = {"endDate": iso_utc(clock.now + timedelta(hours=1)), "roomNamePrefix": "e2e-"}
    created = await call("POST", server.base_url + "/v1/meetings", body=body)
    assert created.status == 201, created.body
    name = created.body["roomName"][1:]

    async with HeadlessParticipant(
        created.body["roomUrl"], _synthetic(builtin_plugins, "a"), name="A"
    ):
        engine = server.rooms[name].engine
        for _ in range(100):
            if engine.status == "started":
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)
    for _ in range(200):
        if engine.status == "stopped":
            break
        await asyncio.sleep(0.1)
    await engine.wait_stored()
    (session,) = engine.sessions
    assert session.status == "stored", session.error

    listed = await call("GET", f"{server.base_url}/v1/recordings?roomName=/{name}")
    assert listed.status == 200, listed.body
    (recording,) = listed.body["results"]
    assert recording["status"] == "stored", recording
    assert recording["meetingId"] == created.body["meetingId"]
    assert recording["filename"].startswith(f"{name}-") and recording["sizeInMegaBytes"] > 0
    rid = recording["recordingId"]

    link = await call("GET", f"{server.base_url}/v1/recordings/{rid}/access-link")
    assert link.status == 200, link.body
    async with aiohttp.ClientSession() as http, http.get(link.body["accessLink"]) as got:
        assert got.status == 200
        data = await got.read()
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) > 10

    assert (await call("DELETE", f"{server.base_url}/v1/recordings/{rid}")).status == 204
    assert not Path(session.stored.location).exists()
    assert (await call("GET", f"{server.base_url}/v1/recordings/{rid}")).status == 404
