"""The whole dashboard flow against ``recfw run`` (a subprocess) with a real S3 endpoint
(moto on loopback) and a webhook receiver that is down at first, in headless Chromium:

log in with a key from ``recfw keys create --admin``; set S3 defaults with a wrong secret
(Test connection names the problem), fix them (Test connection succeeds), save; create a
meeting; two fake-media browsers join it and are recorded; the recording appears as
stored (live, without a reload), downloads (the same bytes as in the bucket, a real
two-person video), and is deleted (gone from the bucket); the webhook endpoint that was
down shows failed deliveries, which are replayed and delivered once it is back.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp
import pytest
from recfw.control.crypto import new_key
from recfw.server.ice import unrestrict_host_addresses
from recfw.testing.processes import RECFW, drain, local_run_config, start_run
from recfw.testing.webhooks import WebhookReceiver
from yarl import URL

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))
from browser_helpers import (  # noqa: E402
    open_room,
    participant_id,
    wait_for,
    wait_remote_tile,
    wait_status,
)
from media_check import assert_two_person_recording  # noqa: E402
from test_dashboard_browser import Console  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RECORD_SECONDS = 3.0

CONFIG = local_run_config(
    "automatic", 'allowedDestinations = ["{s3_allowed}", "127.0.0.1:{receiver_port}"]'
)


async def recfw(*args: str, cwd: Path, env: dict[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        RECFW,
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_dashboard_end_to_end(browser, shots, s3_server, tmp_path):
    bucket = s3_server.create_bucket()
    receiver = WebhookReceiver()
    await receiver.start()
    await receiver.stop()  # down: its port is known, nobody listens
    (tmp_path / "recfw.toml").write_text(
        CONFIG.format(s3_allowed=s3_server.allowed_destination, receiver_port=receiver.port)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECFW_")}
    env.update(
        RECFW_SECRET_KEY=new_key(),
        RECFW_HOST_SECRET="dashboard-e2e-host-secret",
        RECFW_WEBHOOK_EXIT_WAIT="0",
        # Deliveries are given up (failed) a few seconds after their event.
        RECFW_WEBHOOK_MAX_AGE_HOURS="0.001",
    )
    key = await recfw("keys", "create", "--admin", "--name", "e2e", cwd=tmp_path, env=env)
    key = key.strip()
    output: list[str] = []
    proc, base = await start_run(tmp_path, env)
    reading = asyncio.create_task(drain(proc, output))
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = await context.new_page()
        console = Console(page)
        page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
        nav = page.get_by_role("navigation")

        # log in
        await page.goto(f"{base}/dashboard/")
        await shots(page, "login")
        await page.get_by_label("API key").fill(key)
        await page.get_by_role("button", name="Log in").click()
        await page.wait_for_url("**/dashboard/recordings")

        # Configure → Recording: a wrong secret, then the right one
        await nav.get_by_role("link", name="Configure → Recording").click()
        await page.select_option("#provider", "s3")
        await page.get_by_label("Bucket (with optional sub-folder)").fill(f"{bucket}/meetings")
        await page.get_by_label("Access Key ID").fill(s3_server.access_key_id)
        await page.get_by_label("Access Secret").fill("wrong-secret-wrong-secret")
        await page.get_by_label("Region").fill(s3_server.region)
        await page.get_by_label("Endpoint URL (S3-compatible stores)").fill(s3_server.endpoint_url)
        await page.get_by_label("Auto-start (1 person)").check()
        await page.select_option("#fileFormat", "mkv")
        await page.get_by_role("button", name="Test connection").click()
        result = await page.inner_text("#test-result")
        assert "SignatureDoesNotMatch" in result and "wrong-secret" not in result
        await page.get_by_label("Access Secret").fill(s3_server.secret_access_key)
        await page.get_by_role("button", name="Test connection").click()
        assert "Test connection succeeded" in await page.inner_text("#test-result")
        await page.get_by_label("Access Secret").fill(s3_server.secret_access_key)
        await page.get_by_role("button", name="Save defaults").click()
        await page.wait_for_url("**/configure?saved=1")

        # the webhook endpoint (down for now)
        await nav.get_by_role("link", name="Webhooks").click()
        await page.get_by_label("URL").fill(f"http://127.0.0.1:{receiver.port}/hooks")
        await page.get_by_role("button", name="Add endpoint").click()
        assert await page.input_value("#new-secret")

        # a meeting, and two fake-media browsers in it
        await nav.get_by_role("link", name="Meetings").click()
        await page.get_by_label("Ends at (UTC)").fill("2099-01-01T10:00")
        await page.get_by_label("Room name prefix (optional)").fill("standup")
        await page.get_by_role("button", name="Create meeting").click()
        visitor = await page.input_value("#created-visitor")
        host_link = await page.input_value("#created-host")
        await shots(page, "meeting-created")
        host = await open_room(browser, host_link, "Hana")
        guest = await open_room(browser, visitor, "Gus")
        await wait_remote_tile(host, await participant_id(guest))
        await wait_remote_tile(guest, await participant_id(host))
        await page.goto(f"{base}/dashboard/recordings")
        await page.wait_for_selector('tr[data-status="recording"]', timeout=20000)
        await shots(page, "recording-live")
        # The row is there once the spool file is; the recorder process may still be
        # joining (the start runs in the background): record RECORD_SECONDS from the
        # moment it records, not from the row (or the file is a stop-at-once one).
        await wait_status(host, "started", timeout=120)
        await asyncio.sleep(RECORD_SECONDS)
        await host.context.close()
        await guest.context.close()
        # the page updates itself: recording -> stored
        await page.wait_for_selector('tr[data-status="stored"]', timeout=60000)
        row = page.locator('tr[data-status="stored"]')
        assert f"s3://{bucket}/meetings/standup" in await row.inner_text()
        await shots(page, "recording-stored")
        (stored_key,) = s3_server.keys(bucket)

        # download: the access link serves the bucket's object (moto cannot check
        # presigned signatures with its enforced auth on: checked with it off)
        href = await row.get_by_role("link", name="Download").get_attribute("href")
        answer = await page.request.get(f"{base}{href}", max_redirects=0)
        assert answer.status == 303
        link = answer.headers["location"]
        assert link.startswith(s3_server.endpoint_url), link
        previous = s3_server._set_auth("inf")
        try:
            # As given: a presigned URL's escapes are part of what was signed.
            async with (
                aiohttp.ClientSession() as http,
                http.get(URL(link, encoded=True)) as downloaded,
            ):
                assert downloaded.status == 200
                body = await downloaded.read()
        finally:
            s3_server._set_auth(str(previous))
        in_bucket = s3_server.client().get_object(Bucket=bucket, Key=stored_key)["Body"].read()
        assert body == in_bucket
        local = tmp_path / "downloaded.mkv"
        local.write_bytes(body)
        assert_two_person_recording(local)

        # delete: gone from the bucket
        await row.get_by_role("button", name="Delete").click()
        await page.wait_for_url("**/dashboard/recordings?notice=*")
        assert s3_server.keys(bucket) == []
        assert "No recordings yet" in await page.inner_text("#empty")

        # webhooks: failed while the receiver was down, replayed once it is back
        async def failed_shown() -> bool:
            await page.goto(f"{base}/dashboard/webhooks?status=failed")
            if await page.locator('#deliveries tr[data-status="failed"]').count() < 3:
                return False
            # recording.finished is the last event: it gives up a little after the others
            text = await page.inner_text("#deliveries")
            return "room.client.joined" in text and "recording.finished" in text

        await wait_for(failed_shown, timeout=60, interval=2, what="failed deliveries")
        text = await page.inner_text("#deliveries")
        assert "room.client.joined" in text and "recording.finished" in text
        await shots(page, "webhooks-failed")
        await receiver.start()
        await page.get_by_role("button", name="Replay every failed delivery").click()
        await page.wait_for_url("**/dashboard/webhooks?notice=*")

        async def all_delivered() -> bool:
            await page.goto(f"{base}/dashboard/webhooks")
            rows = page.locator("#deliveries tbody tr")
            done = page.locator('#deliveries tr[data-status="delivered"]')
            return await rows.count() > 0 and await done.count() == await rows.count()

        await wait_for(all_delivered, timeout=60, interval=2, what="replayed deliveries")
        types = {e["type"] for e in receiver.events}
        assert {"room.client.joined", "room.client.left", "recording.finished"} <= types
        await shots(page, "webhooks-replayed")
        assert console.errors == []

        # log out: the session is gone
        await page.get_by_role("button", name="Log out").click()
        await page.wait_for_url("**/dashboard/login")
        await page.goto(f"{base}/dashboard/recordings")
        assert page.url.startswith(f"{base}/dashboard/login")
    finally:
        await context.close()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 60)
        await reading
        await receiver.stop()
        unrestrict_host_addresses()
    assert not any("Traceback" in line for line in output), "".join(output)
