"""The /v1 auth middleware: database keys, the bootstrap key, 401/503, and 429 budgets.

Against a real aiohttp server on 127.0.0.1 and a real database (SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from recfw.config import parse_config
from recfw.control import ApiKeyStore
from recfw.control.auth import BOOTSTRAP, PRINCIPAL, ApiAuth
from recfw.secrets import Secret
from recfw.server import RoomServer
from recfw.server.ice import unrestrict_host_addresses

BOOT = "bootstrap-key-0123456789"


class Clock:
    """A virtual clock: tests move it, nothing sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _ping(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    return web.json_response({"key": principal.key_id, "admin": principal.admin})


async def _open(request: web.Request) -> web.Response:
    return web.json_response({"open": True})


@pytest.fixture
async def serve():
    runners: list[web.AppRunner] = []

    async def start(auth: ApiAuth) -> str:
        app = web.Application(middlewares=[auth.middleware])
        app.router.add_get("/v1/ping", _ping)
        app.router.add_get("/v1/openapi.json", _open)
        app.router.add_get("/room", _open)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def get(url: str, key: str | None = None, header: str | None = None):
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if header is not None:
        headers["Authorization"] = header
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, await response.json(), response.headers


def _key(db, name="k", admin=False):
    with db.session() as s:
        return ApiKeyStore().create(s, name, admin=admin)


async def test_a_database_key_is_accepted_and_its_use_recorded(control_db, serve):
    new = _key(control_db, admin=True)
    base = await serve(ApiAuth(control_db, None, rate_limit=0))
    status, body, _ = await get(base + "/v1/ping", new.key)
    assert status == 200 and body == {"key": new.row.id, "admin": True}
    with control_db.session(readonly=True) as s:
        (row,) = ApiKeyStore().list(s)
        assert row.last_used_at is not None
        assert datetime.now(UTC) - row.last_used_at < timedelta(hours=1)


async def test_wrong_missing_and_revoked_keys_get_401(control_db, serve):
    new = _key(control_db)
    base = await serve(ApiAuth(control_db, Secret(BOOT), rate_limit=0))
    for header in (
        None,
        "Bearer",
        "Bearer ",
        f"Basic {new.key}",
        new.key,
        f"Bearer {new.key}x",
        f"Bearer {new.key[:-1]}",
        f"Bearer {BOOT}x",
        "Bearer rfk_\udcff",
    ):
        status, body, headers = await get(base + "/v1/ping", header=header)
        assert status == 401, header
        assert "Bearer" in body["error"] and new.key not in body["error"]
        assert headers["WWW-Authenticate"].startswith("Bearer")
    with control_db.session() as s:
        ApiKeyStore().revoke(s, new.row.id)
    status, _, _ = await get(base + "/v1/ping", new.key)
    assert status == 401
    status, body, _ = await get(base + "/v1/ping", BOOT)
    assert status == 200 and body["key"] == BOOTSTRAP.key_id


async def test_only_v1_is_guarded_and_the_openapi_document_is_public(serve):
    base = await serve(ApiAuth(None, Secret(BOOT)))
    assert (await get(base + "/room"))[0] == 200
    assert (await get(base + "/v1/openapi.json"))[0] == 200
    assert (await get(base + "/v1/ping"))[0] == 401


async def test_without_any_key_source_the_api_answers_503(serve):
    base = await serve(ApiAuth(None, None))
    status, body, _ = await get(base + "/v1/ping", BOOT)
    assert status == 503
    assert "recfw keys create" in body["error"] and "RECFW_API_KEY" in body["error"]


async def test_a_key_over_its_budget_gets_429_with_retry_after(control_db, serve):
    clock = Clock()
    one, other = _key(control_db, "one"), _key(control_db, "other")
    base = await serve(ApiAuth(control_db, None, rate_limit=3, clock=clock))
    for _ in range(3):
        assert (await get(base + "/v1/ping", one.key))[0] == 200
    status, body, headers = await get(base + "/v1/ping", one.key)
    assert status == 429 and "3 a minute" in body["error"]
    assert headers["Retry-After"] == "20"  # 3 a minute: one token every 20 s
    assert (await get(base + "/v1/ping", other.key))[0] == 200  # budgets are per key
    clock.now += 19
    status, _, headers = await get(base + "/v1/ping", one.key)
    assert status == 429 and headers["Retry-After"] == "1"
    clock.now += 1
    assert (await get(base + "/v1/ping", one.key))[0] == 200
    assert (await get(base + "/v1/ping", one.key))[0] == 429
    clock.now += 3600  # refills to the whole budget, not beyond
    assert [(await get(base + "/v1/ping", one.key))[0] for _ in range(4)] == [200] * 3 + [429]


async def test_the_room_server_takes_database_keys(control_db, builtin_plugins, tmp_path):
    config = parse_config(
        {
            "recording": {
                "type": "local",
                "startTrigger": "none",
                "destination": {
                    "provider": "local",
                    "bucket": str(tmp_path / "rec"),
                    "fileFormat": "mkv",
                },
            },
            "server": {"host": "127.0.0.1", "port": 0, "iceAddresses": ["127.0.0.1"]},
        },
        environ={},
    )
    new = _key(control_db)
    server = RoomServer(config, builtin_plugins, spool_dir=tmp_path / "spool", db=control_db)
    base = await server.start()
    try:
        end = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {new.key}"}
            async with http.post(
                base + "/v1/meetings", json={"endDate": end}, headers=headers
            ) as response:
                assert response.status == 201, await response.text()
            async with http.post(base + "/v1/meetings", json={"endDate": end}) as response:
                assert response.status == 401
    finally:
        await server.close()
        unrestrict_host_addresses()
