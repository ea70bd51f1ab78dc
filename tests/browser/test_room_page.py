"""Two Chromium participants in a room: tiles, roles, refusals, loopback ICE."""

from __future__ import annotations

import pytest
from browser_helpers import (
    open_room,
    participant_id,
    server_pairs,
    tile_stats,
    wait_for,
    wait_remote_tile,
)

pytestmark = pytest.mark.browser


async def test_two_browsers_see_each_other_over_loopback(browser, make_server, shots):
    server = await make_server("none")
    visitor_link, host_link = server.links("standup")
    host = await open_room(browser, host_link, "Hana")
    guest = await open_room(browser, visitor_link, "Gus")
    host_id, guest_id = await participant_id(host), await participant_id(guest)
    assert await host.evaluate("window.recfw.role") == "host"
    assert await guest.evaluate("window.recfw.role") == "visitor"

    # Each sees the other's camera (Chromium's fake pattern: bright, not flat).
    seen_by_host = await wait_remote_tile(host, guest_id)
    seen_by_guest = await wait_remote_tile(guest, host_id)
    # Captured at 1280x720 and forwarded as sent: each sees the other 1280 wide.
    assert seen_by_host["width"] == 1280 and seen_by_guest["width"] == 1280
    # Tiles are people only: yourself and the other person.
    for page in (host, guest):
        ids = await page.eval_on_selector_all(".tile", "ts => ts.map(t => t.dataset.peerId)")
        assert sorted(ids) == sorted([host_id, guest_id])
    # The host has a Record button (manual mode); the visitor has none.
    assert await host.is_visible("#record-btn")
    assert not await guest.is_visible("#record-btn")
    assert not await host.is_visible("#rec-indicator")
    # ICE: both browsers' connections run 127.0.0.1 <-> 127.0.0.1.
    for page in (host, guest):
        pairs = await server_pairs(page)
        assert pairs and all(p == ["127.0.0.1", "127.0.0.1"] for p in pairs), pairs
    await shots(host, "host-joined")
    await shots(guest, "visitor-joined")

    # A participant who leaves loses their tile on the other side.
    await guest.context.close()
    await wait_for(
        lambda: host.evaluate(f"!document.querySelector('.tile[data-peer-id=\"{guest_id}\"]')"),
        what="the guest's tile to go",
    )
    assert await tile_stats(host, guest_id) is None


async def test_a_visitor_cannot_start_or_stop_a_recording(browser, make_server, shots, caplog):
    server = await make_server("none")
    visitor_link, host_link = server.links("standup")
    host = await open_room(browser, host_link, "Hana")
    guest = await open_room(browser, visitor_link, "Gus")
    for command in ("startRecording", "stopRecording"):
        error = await guest.evaluate(f"window.recfw.{command}().then(() => null, (e) => e.message)")
        assert error and "only a host" in error, error
    # The refusal is visible in the page ...
    await guest.wait_for_selector("#error:not([hidden])")
    assert "only a host" in await guest.inner_text("#error")
    await shots(guest, "visitor-refused")
    # ... and in the server's log; nothing was recorded.
    assert "refused" in caplog.text
    room = server.rooms["standup"]
    assert room.engine.status == "idle" and not room.engine.sessions
    assert await host.evaluate("document.body.dataset.recording") == "idle"


async def test_an_embedded_visitor_cannot_start_a_recording(browser, make_server, shots):
    server = await make_server("none")
    _, host_link = server.links("standup")
    await open_room(browser, host_link, "Hana")
    context = await browser.new_context(viewport={"width": 1000, "height": 700})
    parent = await context.new_page()
    await parent.goto(f"{server.base_url}/static/embed-example.html?room=standup&name=Eve")
    frame = parent.frame_locator("#room")
    await frame.locator("body[data-participant-id]").wait_for()
    await parent.click("#start")
    await parent.wait_for_function("window.errorEvents.length > 0", timeout=10000)
    assert "only a host" in (await parent.evaluate("window.errorEvents"))[0]
    assert await parent.evaluate("window.statusEvents") == []
    await shots(parent, "embedded-visitor-refused")
    assert server.rooms["standup"].engine.status == "idle"
