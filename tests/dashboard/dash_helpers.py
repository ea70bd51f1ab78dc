"""Helpers of the dashboard tests: a server with a database, keys, a logged-in HTTP client."""

from __future__ import annotations

import re

import aiohttp
from recfw.config import parse_config
from recfw.control import ApiKeyStore

HOST_SECRET = "dashboard-test-host-secret"


def dash_config(allowed: list[str] | None = None, folder: str = "recordings"):
    return parse_config(
        {
            "recording": {
                "type": "local",
                "startTrigger": "automatic",
                "destination": {"provider": "local", "bucket": folder, "fileFormat": "mkv"},
            },
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "iceAddresses": ["127.0.0.1"],
                "apiRateLimit": 0,
                **({"allowedDestinations": allowed} if allowed else {}),
            },
        },
        environ={},
    )


def make_key(db, name: str = "admin", *, admin: bool = True) -> str:
    with db.session() as s:
        return ApiKeyStore().create(s, name, admin=admin).key


def client() -> aiohttp.ClientSession:
    # 127.0.0.1 is an IP address: aiohttp's default jar keeps no cookies for it.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def hidden(html: str, name: str = "csrf") -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden {name} field in the page"
    return found.group(1)


async def log_in(session: aiohttp.ClientSession, base: str, key: str):
    async with session.get(f"{base}/dashboard/login") as r:
        token = hidden(await r.text())
    return await session.post(
        f"{base}/dashboard/login",
        data={"csrf": token, "key": key, "next": ""},
        allow_redirects=False,
    )
