"""The room server with headless aiortc participants: pages, roles, refusals, relay, ICE."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from aiortc import AudioStreamTrack, VideoStreamTrack
from recfw.errors import RecfwError
from recfw.rooms import Participant
from recfw.server.client import HeadlessParticipant, parse_room_url
from recfw.server.ice import candidate_address, filter_sdp
from recfw.server.room import MAX_PEOPLE
from recfw.sources import ParticipantMedia


def _media(name: str) -> ParticipantMedia:
    person = Participant(id=name)
    return ParticipantMedia(person, video=VideoStreamTrack(), audio=AudioStreamTrack())


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def _raw_join(url: str, **join) -> tuple[aiohttp.ClientSession, object, dict]:
    room = parse_room_url(url)
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(room.ws_url)
    await ws.send_json({"type": "join", "roomKey": room.room_key, **join})
    first = await ws.receive_json(timeout=5)
    return session, ws, first


async def test_room_page_static_files_and_bad_names(make_server):
    server = await make_server()
    status, html = await _get(f"{server.base_url}/standup")
    assert status == 200 and "/static/room.js" in html
    for name in ("room.js", "room.css", "recfw-embed.js", "embed-example.html"):
        status, _ = await _get(f"{server.base_url}/static/{name}")
        assert status == 200, name
    status, _ = await _get(f"{server.base_url}/bad%20name")
    assert status == 404


async def test_links_host_key_and_roles(make_server, caplog):
    server = await make_server()
    visitor, host = server.links("standup")
    assert visitor == f"{server.base_url}/standup"
    assert host == f"{visitor}?roomKey={server.host_key('standup')}"
    assert server.host_key("standup") != server.host_key("other")
    s1, ws1, welcome_host = await _raw_join(host, name="H")
    s2, ws2, welcome_visitor = await _raw_join(visitor, name="V")
    caplog.set_level(logging.WARNING, logger="recfw.server")
    s3, ws3, welcome_wrong = await _raw_join(visitor + "?roomKey=not-the-key", name="W")
    try:
        assert welcome_host["type"] == "welcome" and welcome_host["role"] == "host"
        assert welcome_visitor["role"] == "visitor"
        assert welcome_wrong["role"] == "visitor"
        assert "wrong room key" in caplog.text
        assert [p["name"] for p in welcome_wrong["peers"]] == ["H", "V"]
        assert welcome_host["slots"] == MAX_PEOPLE - 1 and welcome_host["loopbackOnly"] is True
    finally:
        for s, ws in ((s1, ws1), (s2, ws2), (s3, ws3)):
            await ws.close()
            await s.close()


async def test_visitor_cannot_start_or_stop_and_the_refusal_is_logged(make_server, caplog):
    server = await make_server("none")
    visitor_link, _ = server.links("standup")
    caplog.set_level(logging.WARNING)
    async with HeadlessParticipant(visitor_link, _media("v"), name="Vera") as visitor:
        with pytest.raises(RecfwError, match="only a host may start"):
            await visitor.command("start_recording")
        with pytest.raises(RecfwError, match="only a host may stop"):
            await visitor.command("stop_recording")
        room = server.rooms["standup"]
        assert room.engine.status == "idle" and not room.engine.sessions
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any("start_recording" in m and "visitor" in m for m in refusals)
    assert any("stop_recording" in m for m in refusals)


async def test_prompt_goes_to_the_host_only(make_server):
    server = await make_server("prompt")
    visitor_link, host_link = server.links("standup")
    s1, ws1, welcome = await _raw_join(host_link, name="H")
    s2, ws2, _ = await _raw_join(visitor_link, name="V")
    try:
        prompted = None
        for _ in range(10):
            message = await ws1.receive_json(timeout=5)
            if message["type"] == "recording" and message["prompt"]:
                prompted = message
                break
        assert prompted is not None and prompted["recording"] == "idle"
        assert server.rooms["standup"].engine.state.prompted == welcome["id"]
        # The visitor is told the status, never asked.
        message = await ws2.receive_json(timeout=5)
        while message["type"] != "recording":
            message = await ws2.receive_json(timeout=5)
        assert message["prompt"] is False
        # Answering a prompt one was not shown is refused.
        await ws2.send_json({"type": "prompt_answer", "accepted": True})
        reply = await ws2.receive_json(timeout=5)
        while reply["type"] != "error":
            reply = await ws2.receive_json(timeout=5)
        assert reply["command"] == "prompt_answer"
    finally:
        for s, ws in ((s1, ws1), (s2, ws2)):
            await ws.close()
            await s.close()


async def test_media_is_relayed_between_participants_over_loopback_only(make_server):
    server = await make_server("none")
    visitor_link, host_link = server.links("standup")
    async with (
        HeadlessParticipant(host_link, _media("a"), name="A", receive=True) as a,
        HeadlessParticipant(visitor_link, _media("b"), name="B", receive=True) as b,
    ):
        room = server.rooms["standup"]
        ids = {a.result.participant_id, b.result.participant_id}
        assert set(room.clients) == ids
        for client in room.clients.values():
            (other,) = ids - {client.id}
            assert client.peer.slot_of(other) is not None
        # Both receive the other's audio and video.
        for _ in range(50):
            received = [await _inbound(p.pc) for p in (a, b)]
            if all(r.get("video", 0) > 0 and r.get("audio", 0) > 0 for r in received):
                break
            await asyncio.sleep(0.1)
        assert all(r.get("video", 0) > 0 and r.get("audio", 0) > 0 for r in received), received
        # Every ICE pair in use, on both ends, is 127.0.0.1 <-> 127.0.0.1.
        pcs = [a.pc, b.pc] + [c.peer.pc for c in room.clients.values()]
        for pc in pcs:
            pairs = _nominated_pairs(pc)
            assert pairs, "no nominated ICE pair"
            for local, remote in pairs:
                assert local == remote == "127.0.0.1", (local, remote)
            for line in pc.localDescription.sdp.splitlines():
                address = candidate_address(line)
                assert address in (None, "127.0.0.1"), line


async def _inbound(pc) -> dict[str, int]:
    stats = await pc.getStats()
    out: dict[str, int] = {}
    for report in stats.values():
        if report.type == "inbound-rtp":
            out[report.kind] = out.get(report.kind, 0) + report.packetsReceived
    return out


def _nominated_pairs(pc) -> list[tuple[str, str]]:
    pairs = []
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport._connection
        for pair in connection._nominated.values():
            pairs.append((pair.local_candidate.host, pair.remote_candidate.host))
    return pairs


async def test_a_full_room_refuses_a_join(make_server):
    server = await make_server("none")
    visitor_link, _ = server.links("standup")
    joined = [await _raw_join(visitor_link, name=f"P{i}") for i in range(MAX_PEOPLE)]
    try:
        assert all(w["type"] == "welcome" for _, _, w in joined)
        session, ws, reply = await _raw_join(visitor_link, name="one too many")
        assert reply == {"type": "error", "command": "join", "message": "the room is full"}
        await ws.close()
        await session.close()
        assert len(server.rooms["standup"].clients) == MAX_PEOPLE
    finally:
        for session, ws, _ in joined:
            await ws.close()
            await session.close()


def test_parse_room_url_names_the_problem():
    url = parse_room_url("http://127.0.0.1:8080/standup?roomKey=abc")
    assert (url.room, url.room_key, url.ws_url) == (
        "standup",
        "abc",
        "ws://127.0.0.1:8080/standup/ws",
    )
    assert url.is_loopback
    with pytest.raises(RecfwError, match="expected http"):
        parse_room_url("ftp://x/standup")
    with pytest.raises(RecfwError, match="room name"):
        parse_room_url("http://127.0.0.1:8080/")


def test_filter_sdp_keeps_loopback_and_drops_mdns():
    sdp = "\r\n".join(
        [
            "v=0",
            "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0",
            "a=candidate:2 1 udp 2122260223 192.0.2.2 50001 typ host generation 0",
            "a=candidate:3 1 udp 2122260223 1f2e-aaaa.local 50002 typ host generation 0",
            "a=mid:0",
        ]
    )
    loopback = filter_sdp(sdp, loopback_only=True)
    assert "127.0.0.1" in loopback and "192.0.2.2" not in loopback and ".local" not in loopback
    anywhere = filter_sdp(sdp, loopback_only=False)
    assert "192.0.2.2" in anywhere and ".local" not in anywhere and "a=mid:0" in anywhere


async def test_only_the_recorder_may_say_whose_video_it_hides(make_server):
    server = await make_server("none")
    visitor, _ = server.links("standup")
    session, ws, welcome = await _raw_join(visitor, name="V")
    try:
        assert welcome["type"] == "welcome"
        await ws.send_json({"type": "recorder_view", "hidden": []})
        reply = await ws.receive_json(timeout=5)
        while reply["type"] != "error":
            reply = await ws.receive_json(timeout=5)
        assert reply["command"] == "recorder_view", reply
        assert "only the recorder sends it" in reply["message"], reply
    finally:
        await ws.close()
        await session.close()
