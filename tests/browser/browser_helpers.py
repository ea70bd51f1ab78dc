"""Helpers that drive the room page in Chromium."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta


async def wait_for(predicate, timeout: float = 15.0, interval: float = 0.1, what: str = ""):
    """Poll an async or sync predicate until truthy; fail with ``what`` on timeout.

    An async predicate is bounded by the same deadline: Playwright's ``evaluate``
    has no timeout of its own, and a page that no longer answers (a starved
    browser) would otherwise hang the test."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            try:
                value = await asyncio.wait_for(value, max(deadline - loop.time(), 5.0))
            except TimeoutError:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what or predicate}"
                    " (the page did not answer)"
                ) from None
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(interval)


TILE_STATS_JS = """
(peerId) => {
  const tile = document.querySelector(`.tile[data-peer-id="${CSS.escape(peerId)}"] video`);
  if (!tile || !tile.videoWidth) return null;
  const c = document.createElement("canvas");
  c.width = 160; c.height = 120;
  const g = c.getContext("2d");
  g.drawImage(tile, 0, 0, c.width, c.height);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let sum = 0, sq = 0, n = 0;
  for (let i = 0; i < d.length; i += 4) {
    const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
    sum += y; sq += y * y; n++;
  }
  const mean = sum / n;
  return { mean, variance: sq / n - mean * mean, width: tile.videoWidth };
}
"""

SERVER_PAIR_JS = """
async () => {
  const stats = await window.recfwState.server.getStats();
  const out = [];
  stats.forEach((r) => {
    if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") {
      out.push([stats.get(r.localCandidateId).address, stats.get(r.remoteCandidateId).address]);
    }
  });
  return out;
}
"""


async def open_room(browser, url: str, name: str):
    """A new browser context with the room page at ``url``; waits until media flows up."""
    context = await browser.new_context(viewport={"width": 1000, "height": 600})
    page = await context.new_page()
    page.on("console", lambda m: m.type == "error" and print(f"[{name}] console: {m.text}"))
    sep = "&" if "?" in url else "?"
    await page.goto(f"{url}{sep}name={name}")
    await page.wait_for_function(
        "window.recfwState && window.recfwState.server && "
        "window.recfwState.server.connectionState === 'connected'",
        timeout=15000,
    )
    return page


async def participant_id(page) -> str:
    return await page.evaluate("document.body.dataset.participantId")


async def tile_stats(page, peer_id: str) -> dict | None:
    return await page.evaluate(TILE_STATS_JS, peer_id)


async def wait_remote_tile(page, peer_id: str) -> dict:
    """Wait until ``peer_id``'s tile shows a picture (not black, not flat); return its stats."""

    async def ok():
        s = await tile_stats(page, peer_id)
        return s if s and s["mean"] > 20 and s["variance"] > 20 else None

    return await wait_for(ok, timeout=15, what=f"a picture in {peer_id}'s tile")


async def server_pairs(page) -> list[list[str]]:
    return await page.evaluate(SERVER_PAIR_JS)


async def recording_status(page) -> str:
    return await page.evaluate("document.body.dataset.recording")


async def wait_status(page, status: str, timeout: float = 60) -> None:
    """Wait for the page to show ``status`` (a busy machine may take long to finish a file)."""
    await page.wait_for_function(
        f"document.body.dataset.recording === {status!r}", timeout=timeout * 1000
    )


PLI_JS = """
async () => {
  const stats = await window.recfwState.server.getStats();
  let n = 0;
  stats.forEach((r) => {
    if (r.type === "outbound-rtp" && r.kind === "video") n += r.pliCount || 0;
  });
  return n;
}
"""


async def pli_count(page) -> int:
    """How many keyframe requests (RTCP PLI) the server sent for this browser's camera."""
    return await page.evaluate(PLI_JS)


async def group_meeting(server, api_key: str) -> dict:
    """A ``roomMode: "group"`` meeting, made through the REST API as a customer would
    (``server``: a started RoomServer whose ``[server] apiKey`` is ``api_key``)."""
    import aiohttp

    end = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    body = {"endDate": end, "roomMode": "group", "fields": ["hostRoomUrl"]}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            server.base_url + "/v1/meetings",
            json=body,
            headers={"Authorization": f"Bearer {api_key}"},
        ) as response,
    ):
        created = await response.json()
        assert response.status == 201, created
        return created
