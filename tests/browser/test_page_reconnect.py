"""A Chromium participant whose media stops is noticed, reconnects by itself, and stays recorded.

The host's media is cut on the server's end of its connection
(:func:`recfw.testing.netcut.cut_incoming`, ``media``: DTLS/RTP dropped, ICE still
answered, so the connection looks up while nothing arrives). The server notices
after ``[server] mediaTimeout`` (3 s here), logs one warning with the cause and
tells the page; the page makes a new connection on the same WebSocket; the
guest's tile of the host goes live again, and the recording has the host's tile
before, marked RECONNECTING during, and live after.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from browser_helpers import open_room, participant_id, wait_for, wait_remote_tile, wait_status
from conftest import LIGHT_VIDEO
from media_check import reconnect_tiles
from recfw.testing.netcut import cut_incoming

pytestmark = pytest.mark.browser

FRAMES_JS = """
(peerId) => {
  const v = document.querySelector(`.tile[data-peer-id="${CSS.escape(peerId)}"] video`);
  return v ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
}
"""


async def _frames(page, peer_id: str) -> int:
    return await page.evaluate(FRAMES_JS, peer_id)


async def _more_frames(page, peer_id: str, before: int, more: int = 10) -> bool:
    return await _frames(page, peer_id) >= before + more


async def test_media_that_stops_reconnects_by_itself_and_is_recorded(
    browser, make_server, shots, caplog
):
    caplog.set_level(logging.INFO)
    server = await make_server("automatic", video={**LIGHT_VIDEO, "mediaTimeout": 3})
    visitor_link, host_link = server.links("standup")
    host = await open_room(browser, host_link, "Hana")
    guest = await open_room(browser, visitor_link, "Gus")
    host_id, guest_id = await participant_id(host), await participant_id(guest)
    await wait_remote_tile(host, guest_id)
    await wait_remote_tile(guest, host_id)
    for page in (host, guest):
        await wait_status(page, "started")
    await asyncio.sleep(2.5)  # the host is recorded before the cut

    room = server.rooms["standup"]
    client = room.clients[host_id]
    old_peer = client.peer
    cut = cut_incoming(old_peer.pc, "media")
    # The page is told and reconnects by itself (a new RTCPeerConnection, same id).
    await host.wait_for_function("window.recfwState.reconnects === 1", timeout=60000)
    await guest.wait_for_function(
        f"window.recfwState.mediaLog.some(e => e.id === {host_id!r} && e.state === 'reconnecting')",
        timeout=60000,
    )
    await shots(guest, "host-reconnecting")
    await host.wait_for_function(
        "window.recfwState.server && window.recfwState.server.connectionState === 'connected'"
        " && document.body.dataset.media === 'live'",
        timeout=60000,
    )
    await wait_for(lambda: host_id not in room.reconnecting, 60, what="the host's media again")
    assert client.peer is not old_peer and cut.dropped > 0
    assert await participant_id(host) == host_id  # the same participant
    # The guest's tile of the host comes back live (new frames), and the host sees the guest.
    before = await _frames(guest, host_id)
    await wait_for(lambda: _more_frames(guest, host_id, before), 60, what="the host's tile live")
    await wait_remote_tile(guest, host_id)
    before = await _frames(host, guest_id)
    await wait_for(lambda: _more_frames(host, guest_id, before), 60, what="the guest's tile")
    marked_js = "(id) => !!document.querySelector(`.tile[data-peer-id='${id}'][data-reconnecting]`)"
    assert not await guest.evaluate(marked_js, host_id)
    assert await guest.locator(".tile").count() == 2
    await shots(guest, "host-back")
    await asyncio.sleep(2.5)  # the host is recorded after the reconnection

    for page in (guest, host):
        await page.context.close()
    await wait_for(lambda: "standup" not in server.rooms, 90, what="everyone to leave")
    (closed,) = [r for r in server.closed_rooms if r.name == "standup"]
    await closed.engine.wait_stored()
    (session,) = closed.engine.sessions
    assert session.status == "stored", session.error

    # One warning for the host, with the cause (a starved machine may stall the guest too).
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
        and r.name == "recfw.server.room"
        and host_id in r.getMessage()
    ]
    assert len(warnings) == 1, warnings
    assert "no media packets for" in warnings[0], warnings

    path = Path("recordings") / session.file_name
    tiles = reconnect_tiles(path, people=2)
    marked = [i for i, t in enumerate(tiles) if t["label"]]
    assert len(marked) == 1, tiles  # only the host's tile was ever marked
    (a,) = marked
    label_frames = tiles[a]["label_frames"]
    # Live before the label, and live again after it (the same tile, the same place).
    assert tiles[a]["live_before"] >= 15, tiles
    assert tiles[a]["live_after"] >= 15, tiles
    assert label_frames >= 1, tiles
    other = tiles[1 - a]
    assert other["live_before"] + other["live_after"] >= 30, tiles
