"""The dashboard in headless Chromium (Playwright) against a room server with a real S3
endpoint (moto on loopback) and a real webhook receiver: log in, Test connection with a
wrong secret then the right one, save defaults, create a meeting, see a stored recording,
download and delete it (gone from the bucket), replay failed webhook deliveries.
Every page must log no console error; screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from aiohttp import web
from dash_helpers import dash_config, make_key
from recfw import netguard
from recfw.control import Outbox, RecordingStore
from recfw.control.crypto import Cipher, new_key
from recfw.control.db import Database
from recfw.control.runtime import ControlRuntime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))
from browser_helpers import wait_for  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture
def db(tmp_path):
    database = Database(
        f"sqlite:///{tmp_path / 'recfw.db'}",
        Cipher([new_key().encode()], "test"),
        data_dir=tmp_path,
    )
    database.upgrade()
    yield database
    database.dispose()


class Console:
    """Collects a page's console errors and uncaught exceptions."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))


async def open_dashboard(browser, base: str, key: str):
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    page = await context.new_page()
    console = Console(page)
    page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
    await page.goto(f"{base}/dashboard/")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/dashboard/recordings")
    return page, console


async def test_login_configure_and_test_connection(browser, shots, db, dash_server, s3_server):
    bucket = s3_server.create_bucket()
    server = await dash_server(db, dash_config([s3_server.allowed_destination]))
    key = make_key(db)
    page, console = await open_dashboard(browser, server.base_url, key)
    await shots(page, "recordings-empty")
    assert "No recordings yet" in await page.inner_text("#empty")

    await page.get_by_role("navigation").get_by_role("link", name="Configure → Recording").click()
    await page.select_option("#provider", "s3")
    await page.get_by_label("Bucket (with optional sub-folder)").fill(f"{bucket}/meetings")
    await page.get_by_label("Access Key ID").fill(s3_server.access_key_id)
    await page.get_by_label("Access Secret").fill("not-the-secret")
    await page.get_by_label("Region").fill(s3_server.region)
    await page.get_by_label("Endpoint URL (S3-compatible stores)").fill(s3_server.endpoint_url)
    await page.get_by_label("Auto-start (2 people)").check()
    await page.get_by_role("button", name="Test connection").click()
    result = await page.inner_text("#test-result")
    assert "Test connection failed" in result and "SignatureDoesNotMatch" in result
    assert "not-the-secret" not in await page.content()
    assert "type it again" in await page.inner_text("#secret-state")
    assert "No secret is saved" in await page.inner_text("#secret-state")
    await shots(page, "configure-wrong-secret")

    await page.get_by_label("Access Key ID").fill("AKIAWRONGWRONGWRONG1")
    await page.get_by_label("Access Secret").fill(s3_server.secret_access_key)
    await page.get_by_role("button", name="Test connection").click()
    assert "InvalidAccessKeyId" in await page.inner_text("#test-result")

    await page.get_by_label("Access Key ID").fill(s3_server.access_key_id)
    await page.get_by_label("Bucket (with optional sub-folder)").fill("no-such-bucket-here")
    await page.get_by_label("Access Secret").fill(s3_server.secret_access_key)
    await page.get_by_role("button", name="Test connection").click()
    assert "NoSuchBucket" in await page.inner_text("#test-result")

    await page.get_by_label("Bucket (with optional sub-folder)").fill(f"{bucket}/meetings")
    await page.get_by_label("Access Secret").fill(s3_server.secret_access_key)
    await page.get_by_role("button", name="Test connection").click()
    assert "Test connection succeeded" in await page.inner_text("#test-result")
    assert s3_server.keys(bucket) == []  # the probe object was deleted
    await shots(page, "configure-test-ok")

    await page.get_by_label("Access Secret").fill(s3_server.secret_access_key)
    await page.get_by_role("button", name="Save defaults").click()
    await page.wait_for_url("**/dashboard/configure?saved=1")
    assert "Meetings created from now on" in await page.inner_text("main")
    assert "A secret is saved" in await page.inner_text("#secret-state")
    assert s3_server.secret_access_key not in await page.content()
    await shots(page, "configure-saved")
    # the running server uses the new defaults for meetings created from now on
    assert server.settings.destination.provider == "s3"
    assert server.settings.start_trigger == "automatic-2nd-participant"

    await page.get_by_role("navigation").get_by_role("link", name="Meetings").click()
    assert "No meetings yet" in await page.inner_text("#empty")
    await page.get_by_label("Ends at (UTC)").fill("2099-01-01T10:00")
    await page.get_by_label("Room name prefix (optional)").fill("sales")
    await page.get_by_role("button", name="Create meeting").click()
    visitor = await page.input_value("#created-visitor")
    host = await page.input_value("#created-host")
    assert "/sales" in visitor and "roomKey=" in host
    await page.get_by_role("button", name="Copy").first.click()
    await shots(page, "meetings-created")
    room = visitor.rsplit("/", 1)[1]
    assert await page.locator(f'#meetings tr[data-room="{room}"]').count() == 1
    # the meeting starts from the saved defaults
    meeting = await server.closed_meeting(room) or server._meeting_rooms[room]
    assert meeting.settings.destination.provider == "s3"
    await page.locator(f'#meetings tr[data-room="{room}"] button.danger').click()
    await page.wait_for_url("**/dashboard/meetings?notice=*")
    assert "deleted" in await page.inner_text("main")
    assert console.errors == []


async def test_recordings_download_delete_and_webhook_replay(
    browser, shots, db, dash_server, s3_server, tmp_path, builtin_plugins
):
    bucket = s3_server.create_bucket()
    # A webhook receiver that first refuses (410: failed for good), then accepts.
    got: list[dict] = []
    answer = {"status": 410}

    async def receive(request):
        got.append(await request.json())
        return web.Response(status=answer["status"])

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    # As `recfw run` does with the config's [server] allowedDestinations.
    config = dash_config([s3_server.allowed_destination, f"127.0.0.1:{port}"])
    disallow = netguard.allow(f"127.0.0.1:{port}")
    runtime = ControlRuntime.open(config, builtin_plugins, db=db)
    server = await dash_server(db, config, control=runtime.events)
    await runtime.start(uploads=False)
    try:
        key = make_key(db)
        page, console = await open_dashboard(browser, server.base_url, key)

        # a stored recording: a real object in the bucket, its row as the engine writes it
        destination = s3_server.destination(bucket, "rec")
        sink = builtin_plugins.sink("s3")
        path = tmp_path / "standup.mkv"
        path.write_bytes(b"matroska bytes " * 1000)
        stored = await asyncio.to_thread(
            sink.store, path, "standup-2026-11-30T10:00:00Z.mkv", destination, None
        )
        with db.session() as s:
            store = RecordingStore()
            row = store.create(
                s,
                room_name="standup",
                filename="standup-2026-11-30T10:00:00Z.mkv",
                destination=destination.to_dict(reveal=True),
                file_format="mkv",
            )
            store.update(
                s,
                row,
                status="stored",
                location=stored.location,
                size_bytes=stored.size,
                duration_s=65.0,
            )
            store.create(s, room_name="live", filename="live-x.mkv", destination=None)
            recording_id = row.recording_id
        assert s3_server.keys(bucket) == ["rec/standup-2026-11-30T10:00:00Z.mkv"]

        await page.goto(f"{server.base_url}/dashboard/recordings")
        row_loc = page.locator(f'tr[data-id="{recording_id}"]')
        assert "stored" in await row_loc.inner_text()
        assert "1:05" in await row_loc.inner_text()
        assert await page.locator('tr[data-status="recording"]').count() == 1
        await shots(page, "recordings-list")
        # live: the recording in progress is shown as stored without a reload
        with db.session() as s:
            live = [r for r in RecordingStore().list(s).items if r.room_name == "live"][0]
            RecordingStore().update(s, live, status="failed", reason="test: stopped")
        await page.wait_for_selector('tr[data-status="failed"]', timeout=10000)
        # filters
        await page.get_by_label("Status").select_option("stored")
        await page.get_by_role("button", name="Filter").click()
        assert await page.locator("#recordings tbody tr").count() == 1

        href = await row_loc.get_by_role("link", name="Download").get_attribute("href")
        response = await page.request.get(f"{server.base_url}{href}", max_redirects=0)
        assert response.status == 303
        link = response.headers["location"]
        assert link.startswith(s3_server.endpoint_url) and "standup" in link

        await row_loc.get_by_role("button", name="Delete").click()
        await page.wait_for_url("**/dashboard/recordings?notice=*")
        assert "deleted from storage" in await page.inner_text("main")
        assert s3_server.keys(bucket) == []
        await shots(page, "recordings-deleted")

        # webhooks: an endpoint that refuses, failed deliveries, replay once it is back
        await page.get_by_role("navigation").get_by_role("link", name="Webhooks").click()
        await page.get_by_label("URL").fill(f"http://127.0.0.1:{port}/hook")
        await page.get_by_role("button", name="Add endpoint").click()
        secret = await page.input_value("#new-secret")
        assert secret
        await page.goto(f"{server.base_url}/dashboard/webhooks")
        assert secret not in await page.content()  # shown once
        with db.session() as s:
            Outbox.add(
                s,
                {
                    "id": "evt-1",
                    "apiVersion": "1.0",
                    "createdAt": "2026-11-30T10:00:00.000Z",
                    "type": "recording.finished",
                    "data": {"recordingId": recording_id},
                },
            )
        runtime.worker.wake()

        def failed() -> bool:
            with db.session(readonly=True) as s:
                return bool(Outbox.deliveries(s, status="failed"))

        await wait_for(failed, timeout=20, what="a failed delivery")
        await page.reload()
        assert await page.locator('#deliveries tr[data-status="failed"]').count() == 1
        assert "410" in await page.inner_text("#deliveries")
        await shots(page, "webhooks-failed")
        answer["status"] = 200
        await page.get_by_role("button", name="Replay every failed delivery").click()
        await page.wait_for_url("**/dashboard/webhooks?notice=*")

        def delivered() -> bool:
            with db.session(readonly=True) as s:
                return bool(Outbox.deliveries(s, status="delivered"))

        await wait_for(delivered, timeout=20, what="the replayed delivery")
        await page.goto(f"{server.base_url}/dashboard/webhooks")
        assert await page.locator('#deliveries tr[data-status="delivered"]').count() == 1
        assert [e["id"] for e in got] == ["evt-1", "evt-1"]
        await shots(page, "webhooks-replayed")
        assert console.errors == []
    finally:
        await runtime.stop(flush=0)
        await runner.cleanup()
        disallow()
