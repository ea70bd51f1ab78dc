"""Input that once gave a traceback in the server log: now one clear line each."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from recfw.server.client import parse_room_url


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


async def test_an_unparseable_sdp_offer_is_an_error_for_the_sender_not_the_log(
    make_server, caplog
):
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
            assert reply["message"].startswith("offer: the SDP cannot be used: "), reply
            assert "server error" not in reply["message"]
        # The connection lives on and still answers.
        await ws.send_json({"type": "dance"})
        assert "unknown message type" in (await _next(ws, "error"))["message"]
        await ws.close()
    assert not _tracebacks(caplog), [r.getMessage() for r in _tracebacks(caplog)]
    await asyncio.sleep(0)
