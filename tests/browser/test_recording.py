"""Each trigger with two Chromium participants; the stored file is decoded and checked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from browser_helpers import (
    open_room,
    participant_id,
    pli_count,
    wait_for,
    wait_remote_tile,
    wait_status,
)
from conftest import LIGHT_VIDEO
from media_check import assert_two_person_recording
from recfw.events import CLIENT_JOINED, CLIENT_LEFT

pytestmark = pytest.mark.browser

RECORD_SECONDS = 3.0


class EventLog:
    """Collects the events the engine emits (what webhooks would receive)."""

    def __init__(self, plugins):
        self.events = []
        original = plugins.emit

        def emit(event, config):
            self.events.append(event)
            return original(event, config)

        plugins.emit = emit

    def recorder_events(self) -> list[str]:
        return [
            e.type
            for e in self.events
            if e.type in (CLIENT_JOINED, CLIENT_LEFT) and e.data["roleName"] == "recorder"
        ]


async def _two_people(browser, server, shots, room="standup"):
    visitor_link, host_link = server.links(room)
    host = await open_room(browser, host_link, "Hana")
    guest = await open_room(browser, visitor_link, "Gus")
    host_id, guest_id = await participant_id(host), await participant_id(guest)
    await wait_remote_tile(host, guest_id)
    await wait_remote_tile(guest, host_id)
    return host, guest


async def _leave_and_get_file(server, pages, room="standup"):
    for page in pages:
        await page.context.close()
    # The recording is finished and stored first: allow for a busy machine.
    await wait_for(lambda: room not in server.rooms, 90, what="everyone to leave")
    (closed,) = [r for r in server.closed_rooms if r.name == room]
    await closed.engine.wait_stored()
    (session,) = closed.engine.sessions
    assert session.status == "stored", session.error
    return session


async def _more(count, before: int) -> bool:
    return await count > before


def _local_file(session) -> Path:
    path = Path("recordings") / session.file_name
    assert path.is_file(), session.stored.location
    assert path.resolve().samefile(session.stored.location.removeprefix("file://"))
    return path


async def test_automatic_records_both_browsers(browser, make_server, builtin_plugins, shots):
    log = EventLog(builtin_plugins)
    server = await make_server("automatic", video=LIGHT_VIDEO)
    host, guest = await _two_people(browser, server, shots)
    for page in (host, guest):
        await wait_status(page, "started")
        assert await page.is_visible("#rec-indicator")
    await asyncio.sleep(RECORD_SECONDS)
    await shots(host, "recording")
    await shots(guest, "recording")
    # The recorder is a participant to the engine, never a tile in the page.
    assert await host.locator(".tile").count() == 2
    session = await _leave_and_get_file(server, [guest, host])
    assert log.recorder_events() == [CLIENT_JOINED, CLIENT_LEFT]
    assert session.file_name.startswith("standup-") and session.file_name.endswith(".mkv")
    assert_two_person_recording(_local_file(session))


async def test_automatic_2nd_participant_to_s3(
    browser, make_server, shots, s3_server, s3_bucket, tmp_path
):
    destination = s3_server.destination(s3_bucket, "meetings").to_dict(reveal=True)
    server = await make_server("automatic-2nd-participant", destination, video=LIGHT_VIDEO)
    visitor_link, host_link = server.links("standup")
    host = await open_room(browser, host_link, "Hana")
    await asyncio.sleep(1.0)
    assert await host.evaluate("document.body.dataset.recording") == "idle"
    await shots(host, "alone-not-recording")
    guest = await open_room(browser, visitor_link, "Gus")
    await wait_remote_tile(host, await participant_id(guest))
    await wait_remote_tile(guest, await participant_id(host))
    for page in (host, guest):
        await wait_status(page, "started")
    await asyncio.sleep(RECORD_SECONDS)
    await shots(guest, "recording")
    session = await _leave_and_get_file(server, [host, guest])
    key = f"meetings/{session.file_name}"
    assert session.stored.location == f"s3://{s3_bucket}/{key}"
    local = tmp_path / session.file_name
    s3_server.client().download_file(s3_bucket, key, str(local))
    assert_two_person_recording(local)


async def test_prompt_accepted_by_the_host(browser, make_server, shots):
    server = await make_server("prompt", video=LIGHT_VIDEO)
    host, guest = await _two_people(browser, server, shots)
    await host.wait_for_selector("#prompt:not([hidden])")
    assert not await guest.is_visible("#prompt")
    await shots(host, "prompted")
    await host.click("#prompt-accept")
    for page in (host, guest):
        await wait_status(page, "started")
    await asyncio.sleep(RECORD_SECONDS)
    await shots(host, "recording")
    # The host stops it with the Stop button.
    assert await host.inner_text("#record-btn") == "Stop"
    await host.click("#record-btn")
    for page in (host, guest):
        await wait_status(page, "stopped")
    assert not await guest.is_visible("#rec-indicator")
    await shots(host, "stopped")
    session = await _leave_and_get_file(server, [guest, host])
    assert_two_person_recording(_local_file(session))


async def test_manual_record_button(browser, make_server, shots):
    server = await make_server("none", video=LIGHT_VIDEO)
    host, guest = await _two_people(browser, server, shots)
    assert await host.inner_text("#record-btn") == "Record"
    await shots(host, "before-record")
    plis = [await pli_count(page) for page in (host, guest)]
    assert all(n >= 1 for n in plis), plis  # asked when their video started
    await host.click("#record-btn")
    for page in (host, guest):
        await wait_status(page, "started")
    # The recorder asks each camera for a keyframe when it starts reading it.
    for page, before in zip((host, guest), plis, strict=True):
        await wait_for(lambda p=page, b=before: _more(pli_count(p), b), what="a keyframe request")
    await asyncio.sleep(RECORD_SECONDS)
    await shots(guest, "recording")
    await host.click("#record-btn")
    await wait_status(host, "stopped")
    session = await _leave_and_get_file(server, [guest, host])
    assert_two_person_recording(_local_file(session))


async def test_embed_postmessage_api(browser, make_server, shots):
    server = await make_server("none", video=LIGHT_VIDEO)
    visitor_link, _ = server.links("standup")
    key = server.host_key("standup")
    context = await browser.new_context(viewport={"width": 1000, "height": 700})
    parent = await context.new_page()
    await parent.goto(
        f"{server.base_url}/static/embed-example.html?room=standup&roomKey={key}&name=Ada"
    )
    frame = parent.frame_locator("#room")
    await frame.locator("body[data-participant-id]").wait_for()
    guest = await open_room(browser, visitor_link, "Gus")
    host_id = await frame.locator("body").get_attribute("data-participant-id")
    await wait_remote_tile(guest, host_id)
    # The parent page commands the embedded room with postMessage (recfw-embed.js).
    await parent.evaluate("window.recfwRoom.startRecording()")
    await parent.wait_for_function("window.statusEvents.includes('started')", timeout=15000)
    await asyncio.sleep(RECORD_SECONDS)
    await shots(parent, "embedded-recording")
    await parent.evaluate("window.recfwRoom.stopRecording()")
    await parent.wait_for_function("window.statusEvents.includes('stopped')", timeout=15000)
    assert await parent.evaluate("window.statusEvents") == ["starting", "started", "stopped"]
    assert await parent.evaluate("window.errorEvents") == []
    await shots(parent, "embedded-stopped")
    session = await _leave_and_get_file(server, [guest, parent])
    assert_two_person_recording(_local_file(session))
