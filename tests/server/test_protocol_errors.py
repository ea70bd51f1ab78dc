"""Malformed input to the room server and to ``recfw join``: clear errors, never a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiortc import AudioStreamTrack, VideoStreamTrack
from recfw.engine import RoomEngine
from recfw.errors import RecfwError
from recfw.rooms import Participant
from recfw.secrets import Secret
from recfw.server import room as room_module
from recfw.server.client import HeadlessParticipant, mask_room_key, parse_room_url
from recfw.sources import ParticipantMedia

RECFW = str(Path(sys.executable).parent / "recfw")


def _media(name: str) -> ParticipantMedia:
    return ParticipantMedia(
        Participant(id=name), video=VideoStreamTrack(), audio=AudioStreamTrack()
    )


async def _open(url: str) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    session = aiohttp.ClientSession()
    return session, await session.ws_connect(parse_room_url(url).ws_url)


async def _next(ws, kind: str) -> dict:
    """The next message of type ``kind`` (others, e.g. status broadcasts, are skipped)."""
    for _ in range(20):
        message = await ws.receive_json(timeout=5)
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind!r} message")


async def test_malformed_messages_get_an_error_and_the_connection_lives_on(make_server, caplog):
    server = await make_server()
    visitor_link, _ = server.links("standup")
    session, ws = await _open(visitor_link)
    caplog.set_level(logging.ERROR)
    try:
        before_join = [
            ("not json {", "not valid JSON"),
            ("[" * 100_000 + "]" * 100_000, "nested too deeply"),  # RecursionError in json
            ("[1, 2]", "not an array"),
            ('"join"', "not a string"),
            ("{}", "'type' must be a string"),
            ('{"type": 5}', "'type' must be a string"),
            ('{"type": "offer", "sdp": "x"}', "send 'join' first"),
            ('{"type": "join", "roomKey": {"a": 1}}', "'roomKey' must be a string, not an object"),
            ('{"type": "join", "roomKey": ["x"]}', "'roomKey' must be a string, not an array"),
            ('{"type": "join", "roomKey": 123}', "'roomKey' must be a string, not a number"),
            ('{"type": "join", "name": ["x"]}', "'name' must be a string, not an array"),
        ]
        for text, words in before_join:
            await ws.send_str(text)
            reply = await ws.receive_json(timeout=5)
            assert reply["type"] == "error" and words in reply["message"], (text[:40], reply)
        await ws.send_bytes(b"\x00\x01")
        reply = await ws.receive_json(timeout=5)
        assert reply["type"] == "error" and "JSON text" in reply["message"]
        assert "standup" not in server.rooms  # nobody joined yet

        # The connection survived all of that: a proper join still works.
        await ws.send_json({"type": "join", "name": "Vera"})
        assert (await _next(ws, "welcome"))["role"] == "visitor"
        after_join = [
            ('{"type": "offer"}', "offer", "'sdp' must be a string"),
            ('{"type": "offer", "sdp": 7}', "offer", "'sdp' must be a string"),
            ('{"type": "prompt_answer", "accepted": "false"}', "prompt_answer", "'accepted'"),
            ('{"type": "dance"}', "dance", "unknown message type 'dance'"),
            ("[" * 100_000 + "]" * 100_000, None, "nested too deeply"),
            ('{"type": null}', None, "'type' must be a string"),
        ]
        for text, command, words in after_join:
            await ws.send_str(text)
            reply = await _next(ws, "error")
            assert reply.get("command") == command and words in reply["message"], (text, reply)
        assert len(server.rooms["standup"].clients) == 1
    finally:
        await ws.close()
        await session.close()
    assert "Traceback" not in caplog.text and not [
        r for r in caplog.records if r.exc_info is not None
    ]


@pytest.mark.parametrize("key", ["é", "\ud800", "ключ" * 10, ""])
async def test_a_non_ascii_room_key_joins_as_visitor(make_server, caplog, key):
    server = await make_server()
    visitor_link, _ = server.links("standup")
    session, ws = await _open(visitor_link)
    caplog.set_level(logging.WARNING)
    try:
        # ensure_ascii keeps a lone surrogate sendable: the server decodes it back to one.
        await ws.send_str(json.dumps({"type": "join", "roomKey": key, "name": "K"}))
        welcome = await _next(ws, "welcome")
        assert welcome["role"] == "visitor"
        assert not [r for r in caplog.records if r.exc_info is not None]
    finally:
        await ws.close()
        await session.close()
    for _ in range(50):  # the room empties and goes once the visitor left
        if "standup" not in server.rooms:
            break
        await asyncio.sleep(0.05)
    assert "standup" not in server.rooms


def test_is_host_key_takes_any_json_value(builtin_plugins):
    from recfw.config import load_config
    from recfw.server import RoomServer

    server = RoomServer(load_config(None, environ={}), builtin_plugins, host_secret="s" * 10)
    good = server.host_key("r1")
    assert server.is_host_key("r1", good)
    for bad in ("é", "\ud800", good + "é", good[:-1], "", None, 123, ["x"], {"a": 1}, True):
        assert server.is_host_key("r1", bad) is False, bad


async def test_prompt_answer_needs_a_real_boolean(make_server):
    server = await make_server("prompt")
    visitor_link, host_link = server.links("standup")
    s1, host = await _open(host_link)
    s2, visitor = await _open(visitor_link)
    try:
        await host.send_json({"type": "join", "roomKey": parse_room_url(host_link).room_key})
        await _next(host, "welcome")
        await visitor.send_json({"type": "join"})
        await _next(visitor, "welcome")
        room = server.rooms["standup"]
        for _ in range(10):
            message = await _next(host, "recording")
            if message["prompt"]:
                break
        assert message["prompt"] is True
        for accepted in ("false", "true", 1, 0, None):
            await host.send_json({"type": "prompt_answer", "accepted": accepted})
            reply = await _next(host, "error")
            assert reply["command"] == "prompt_answer"
            assert "'accepted' must be true or false" in reply["message"]
            assert room.engine.status == "idle" and not room.engine.sessions
        assert room.engine.state.prompted is not None  # still asking: nothing was decided
        await host.send_json({"type": "prompt_answer", "accepted": False})
        reply = await _next(host, "result")
        assert reply["command"] == "prompt_answer"
        assert room.engine.status == "idle" and not room.engine.sessions
    finally:
        for s, ws in ((s1, host), (s2, visitor)):
            await ws.close()
            await s.close()


async def test_a_failed_join_leaves_nobody_behind(make_server, monkeypatch, caplog):
    server = await make_server()
    visitor_link, _ = server.links("standup")
    real_join = RoomEngine.join
    failing: set[str] = set()

    async def join(self, participant):
        if participant.display_name in failing:
            raise RuntimeError("the source plugin broke")
        return await real_join(self, participant)

    closed: list[str] = []
    real_close = room_module.IngestPeer.close

    async def close(self):
        closed.append(self.participant.display_name)
        await real_close(self)

    monkeypatch.setattr(RoomEngine, "join", join)
    monkeypatch.setattr(room_module.IngestPeer, "close", close)
    caplog.set_level(logging.ERROR, logger="recfw.server")

    # Alone in the room: the join fails, the socket hears why, the room goes.
    failing.add("Broken")
    session, ws = await _open(visitor_link)
    try:
        await ws.send_json({"type": "join", "name": "Broken"})
        reply = await ws.receive_json(timeout=5)
        assert reply == {
            "type": "error",
            "command": "join",
            "message": "the join failed: server error",
        }
        assert (await ws.receive(timeout=5)).type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
        )
    finally:
        await ws.close()
        await session.close()
    assert "standup" not in server.rooms
    assert closed == ["Broken"]
    assert "a join failed" in caplog.text

    # With someone there: they see the failed one come and go; the room stays theirs.
    s1, first = await _open(visitor_link)
    try:
        await first.send_json({"type": "join", "name": "Anna"})
        await _next(first, "welcome")
        room = server.rooms["standup"]
        with pytest.raises(RecfwError, match="the join failed"):
            await HeadlessParticipant(visitor_link, _media("b"), name="Broken").connect(5)
        joined = await _next(first, "peer_joined")
        left = await _next(first, "peer_left")
        assert left["id"] == joined["peer"]["id"]
        assert [c.participant.display_name for c in room.clients.values()] == ["Anna"]
        assert [p.display_name for p in room.engine.state.participants] == ["Anna"]
        assert closed == ["Broken", "Broken"]
    finally:
        await first.close()
        await s1.close()
    for _ in range(50):
        if "standup" not in server.rooms:
            break
        await asyncio.sleep(0.05)
    assert "standup" not in server.rooms and room.empty


# --- recfw join against a server that does not answer ---------------------------


async def _fake_server(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/{room}/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def test_recfw_join_against_a_silent_server_says_so_and_closes(tmp_path):
    connections: list[str] = []

    async def silent(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connections.append("open")
        async for _ in ws:  # hears the join, never answers
            pass
        connections.append("closed")
        return ws

    runner, base = await _fake_server(silent)
    try:
        proc = await asyncio.create_subprocess_exec(
            RECFW,
            "join",
            f"{base}/room?roomKey=the-secret-host-key",
            "--duration",
            "1",
            "--timeout",
            "1",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await runner.cleanup()
    text = out.decode() + err.decode()
    assert proc.returncode == 1, text
    assert f"Error: no answer from the room server at {base.replace('http', 'ws')}/room/ws" in text
    assert "within 1 s" in text
    assert "Traceback" not in text and "Event loop is closed" not in text
    assert "Unclosed" not in text
    assert "the-secret-host-key" not in text
    assert connections == ["open", "closed"]  # the client hung up itself


async def test_media_that_never_connects_is_a_clear_error():
    async def welcome_only(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if json.loads(msg.data)["type"] == "join":
                await ws.send_json({"type": "welcome", "id": "v-1", "role": "visitor", "slots": 0})
            # the offer is never answered
        return ws

    runner, base = await _fake_server(welcome_only)
    media = _media("m")
    try:
        client = HeadlessParticipant(f"{base}/room", media, name="M")
        with pytest.raises(RecfwError) as info:
            await client.connect(timeout=1)
    finally:
        await runner.cleanup()
    assert str(info.value).startswith("media not connected within 1 s")
    assert "iceAddresses" in str(info.value)
    assert client._ws.closed and client._session.closed  # closed on the way out
    assert media.video.readyState == "ended"


async def test_a_server_that_hangs_up_or_talks_nonsense_is_a_clear_error():
    async def nonsense(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()
        await ws.send_str("this is not JSON")
        await ws.close()
        return ws

    runner, base = await _fake_server(nonsense)
    try:
        with pytest.raises(RecfwError, match="bad message from the room server"):
            await HeadlessParticipant(f"{base}/room", _media("n")).connect(timeout=5)
    finally:
        await runner.cleanup()


def test_room_url_errors_never_show_the_host_key():
    secret = "f00dcafe0123456789abcdef"
    for url in (
        f"ftp://127.0.0.1/standup?roomKey={secret}",
        f"http://127.0.0.1:notaport/standup?roomKey={secret}&name=x",
        f"http:///standup?x=1&roomKey={secret}#top",
    ):
        with pytest.raises(RecfwError) as info:
            parse_room_url(url)
        assert secret not in str(info.value), str(info.value)
        assert f"roomKey={Secret.MASK}" in str(info.value)
    parsed = parse_room_url(f"http://127.0.0.1:8080/standup?roomKey={secret}")
    assert parsed.room_key == secret and secret not in repr(parsed)
    assert mask_room_key(f"/r?a=1&roomKey={secret}&b=2") == f"/r?a=1&roomKey={Secret.MASK}&b=2"
