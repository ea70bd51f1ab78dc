"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, fake camera + mic.

Never ``playwright install``: the browser is the system's. ICE stays on loopback:
the server offers only 127.0.0.1 and ignores checks from other addresses, and the
page drops non-loopback candidates (the server tells it ``loopbackOnly``).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from recfw.config import parse_config
from recfw.server import RoomServer
from recfw.server.ice import unrestrict_host_addresses

CHROMIUM = os.environ.get("RECFW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
HOST_SECRET = "browser-test-host-secret"


#: What the recording tests' cameras send: 16:9 like the default 1280x720 (so the tiles'
#: layout is the same) but light enough for two Chromiums and a live recorder on a busy
#: 2-core box. test_room_page checks the default 1280x720 end to end.
LIGHT_VIDEO = {"videoWidth": 320, "videoHeight": 180, "videoFps": 15}


def room_config(trigger: str, destination: dict, video: dict | None = None) -> object:
    return parse_config(
        {
            "recording": {
                "type": "local" if destination["provider"] == "local" else "cloud",
                "startTrigger": trigger,
                "destination": destination,
            },
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "iceAddresses": ["127.0.0.1"],
                **(video or {}),
            },
        },
        environ={},
    )


@pytest.fixture
async def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps` (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def make_server(builtin_plugins, tmp_path, monkeypatch):
    """``await make_server(trigger, destination=None, video=None)``: a room server on 127.0.0.1.

    ``video``: ``[server]`` video settings (default: 1280x720 at 30 fps).

    The default destination is the local folder ``recordings`` in the test's
    temporary directory (the working directory during the test).
    """
    servers: list[RoomServer] = []
    monkeypatch.chdir(tmp_path)

    async def make(
        trigger: str, destination: dict | None = None, video: dict | None = None
    ) -> RoomServer:
        destination = destination or {
            "provider": "local",
            "bucket": "recordings",
            "fileFormat": "mkv",
        }
        config = room_config(trigger, destination, video)
        server = RoomServer(
            config, builtin_plugins, host_secret=HOST_SECRET, spool_dir=tmp_path / "spool"
        )
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()
    unrestrict_host_addresses()


class Shots:
    """Saves page screenshots as test artefacts (artifacts/screenshots/, not committed)."""

    def __init__(self, test_name: str):
        self.prefix = re.sub(r"[^A-Za-z0-9_-]+", "_", test_name)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    async def __call__(self, page, state: str) -> Path:
        path = SCREENSHOTS / f"{self.prefix}--{state}.png"
        await page.screenshot(path=str(path))
        return path


@pytest.fixture
def shots(request) -> Shots:
    return Shots(request.node.name)
