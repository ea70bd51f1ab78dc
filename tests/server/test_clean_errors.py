"""Input that once gave a traceback in the server log: now one clear line each."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from recfw.server.client import parse_room_url
from recfw.server.ice import unrestrict_host_addresses


async def _next(ws, kind: str) -> dict:
    for _ in range(20):
        message = await ws.receive_json(timeout=10)
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind!r} message")


def _tracebacks(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info is not None or r.levelno >= logging.ERROR]


BAD_OFFERS = [
    # aiortc: ValueError (no ICE credentials), AssertionError (a bad m= line), ...
    "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
    "m=audio x\r\n",
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    "c=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n",
    "v=0\r\na=ice-ufrag:x\r\na=ice-pwd:y\r\nm=audio 9 RTP 0\r\na=rtpmap:zero\r\n",
]


async def test_an_unparseable_sdp_offer_is_an_error_for_the_sender_not_the_log(make_server, caplog):
    server = await make_server()
    visitor_link, _ = server.links("standup")
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(parse_room_url(visitor_link).ws_url)
        await ws.send_json({"type": "join", "name": "Sam"})
        await _next(ws, "welcome")
        for sdp in BAD_OFFERS:
            await ws.send_json({"type": "offer", "sdp": sdp})
            reply = await _next(ws, "error")
            assert reply["command"] == "offer", reply
            # One line naming what is wrong: aiortc's complaint, or the codec the room forwards.
            assert reply["message"].startswith("offer: "), reply
            assert len(reply["message"].splitlines()) == 1, reply
            assert "server error" not in reply["message"]
        # The connection lives on and still answers.
        await ws.send_json({"type": "dance"})
        assert "unknown message type" in (await _next(ws, "error"))["message"]
        await ws.close()
    assert not _tracebacks(caplog), [r.getMessage() for r in _tracebacks(caplog)]
    await asyncio.sleep(0)


async def _raw_request(base_url: str, head: bytes) -> bytes:
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1000), 10)
    finally:
        writer.close()


async def test_a_huge_authorization_header_is_a_400_and_one_log_line(make_server, caplog):
    server = await make_server()
    caplog.set_level(logging.INFO)
    key = "k" * 65_000
    head = (
        f"POST /v1/meetings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    answer = await _raw_request(server.base_url, head)
    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
    assert not _tracebacks(caplog), [r.getMessage() for r in _tracebacks(caplog)]
    refused = [r for r in caplog.records if "malformed HTTP request" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.WARNING
    assert "LineTooLong" in refused[0].getMessage() and "127.0.0.1" in refused[0].getMessage()
    assert "kkkk" not in caplog.text  # nothing of the header's content in the log
    # The server still serves.
    answer = await _raw_request(server.base_url, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b" 200 " in answer.split(b"\r\n")[0]


async def test_the_access_log_is_off_by_default_and_hides_room_keys(
    builtin_plugins, tmp_path, caplog
):
    from recfw.config import parse_config
    from recfw.server import RoomServer

    config = parse_config(
        {
            "recording": {"type": "local", "startTrigger": "none"},
            "server": {"host": "127.0.0.1", "port": 0, "iceAddresses": ["127.0.0.1"]},
        },
        environ={},
    )
    caplog.set_level(logging.INFO)
    for access_log in (False, True):
        caplog.clear()
        server = RoomServer(
            config,
            builtin_plugins,
            host_secret="s" * 16,
            spool_dir=tmp_path / "spool",
            access_log=access_log,
        )
        await server.start()
        try:
            _, host_link = server.links("standup")
            async with aiohttp.ClientSession() as session:
                async with session.get(host_link) as response:
                    assert response.status == 200
        finally:
            await server.close()
            unrestrict_host_addresses()
        lines = [r.getMessage() for r in caplog.records if r.name == "recfw.access"]
        if not access_log:
            assert lines == []
            continue
        assert len(lines) == 1, lines
        assert lines[0].startswith('127.0.0.1 "GET /standup" 200 ')
        assert server.host_key("standup") not in caplog.text
