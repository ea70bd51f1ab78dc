"""Who gets into the dashboard: admin keys only, with a live session and the form's CSRF
token; a room link, a non-admin key, a missing or forged token, a stale cookie are refused."""

from __future__ import annotations

from datetime import timedelta

from dash_helpers import client, hidden, log_in, make_key
from recfw.control import ApiKeyStore
from recfw.dashboard.app import COOKIE


async def test_admin_login_sets_a_strict_httponly_cookie_and_opens_the_pages(
    control_db, dash_server
):
    server = await dash_server(control_db)
    key = make_key(control_db)
    async with client() as http:
        response = await log_in(http, server.base_url, key)
        assert response.status == 303
        cookie = response.cookies[COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        assert not cookie["secure"]  # plain http here; see the https test below
        assert cookie["path"] == "/dashboard"
        for page in ("recordings", "meetings", "webhooks", "configure"):
            async with http.get(f"{server.base_url}/dashboard/{page}") as r:
                assert r.status == 200, page
                assert "Content-Security-Policy" in r.headers
                assert "Log out" in await r.text()


async def test_cookie_is_secure_behind_https(control_db, dash_server):
    server = await dash_server(control_db)
    key = make_key(control_db)
    async with client() as http:
        async with http.get(f"{server.base_url}/dashboard/login") as r:
            token = hidden(await r.text())
        response = await http.post(
            f"{server.base_url}/dashboard/login",
            data={"csrf": token, "key": key},
            headers={"X-Forwarded-Proto": "https"},
            allow_redirects=False,
        )
        assert response.status == 303
        assert response.cookies[COOKIE]["secure"]


async def test_room_links_and_non_admin_keys_are_refused(control_db, dash_server):
    server = await dash_server(control_db)
    visitor, host = server.links("standup")
    plain = make_key(control_db, "integration", admin=False)
    async with client() as http:
        async with http.get(visitor) as r:  # a visitor may open the room ...
            assert r.status == 200
        # ... but neither the visitor link nor the host link opens the dashboard
        for url in (
            f"{server.base_url}/dashboard/recordings",
            f"{server.base_url}/dashboard/recordings?roomKey={server.host_key('standup')}",
        ):
            async with http.get(url, allow_redirects=False) as r:
                assert r.status == 303
                assert r.headers["Location"].startswith("/dashboard/login")
        response = await log_in(http, server.base_url, server.host_key("standup"))
        assert response.status == 401
        response = await log_in(http, server.base_url, plain)
        assert response.status == 401
        assert "no admin rights" in await response.text()
        assert COOKIE not in response.cookies
        async with http.get(f"{server.base_url}/dashboard/meetings", allow_redirects=False) as r:
            assert r.status == 303


async def test_forms_need_the_sessions_csrf_token(control_db, dash_server):
    server = await dash_server(control_db)
    key = make_key(control_db)
    url = f"{server.base_url}/dashboard/webhooks/replay"
    async with client() as http:
        await log_in(http, server.base_url, key)
        async with http.get(f"{server.base_url}/dashboard/webhooks") as r:
            token = hidden(await r.text())
        for data in ({"all_failed": "1"}, {"all_failed": "1", "csrf": "forged" + token[6:]}):
            async with http.post(url, data=data, allow_redirects=False) as r:
                assert r.status == 403
                assert "security token" in await r.text()
        async with http.post(
            url, data={"all_failed": "1", "csrf": token}, allow_redirects=False
        ) as r:
            assert r.status == 303
        # the login form has its own token (a cookie and a field that must match)
        async with http.post(
            f"{server.base_url}/dashboard/login", data={"key": key, "csrf": "x"}
        ) as r:
            assert r.status == 403


async def test_stale_session_cookies_are_refused(control_db, dash_server):
    server = await dash_server(control_db)
    key = make_key(control_db)
    async with client() as http:
        response = await log_in(http, server.base_url, key)
        token = response.cookies[COOKIE].value
        async with http.get(f"{server.base_url}/dashboard/webhooks") as r:
            csrf = hidden(await r.text())
        async with http.post(
            f"{server.base_url}/dashboard/logout", data={"csrf": csrf}, allow_redirects=False
        ) as r:
            assert r.status == 303
    dashboard = f"{server.base_url}/dashboard/recordings"
    async with client() as http:  # the old cookie, replayed after logout
        http.cookie_jar.update_cookies({COOKIE: token})
        async with http.get(dashboard, allow_redirects=False) as r:
            assert r.status == 303
        async with http.post(
            f"{server.base_url}/dashboard/webhooks/replay",
            data={"csrf": csrf, "all_failed": "1"},
            allow_redirects=False,
        ) as r:
            assert r.status == 401
    async with client() as http:  # an expired session, and a revoked key's session
        response = await log_in(http, server.base_url, key)
        assert response.status == 303
        async with http.get(dashboard, allow_redirects=False) as r:
            assert r.status == 200
        sessions = server.dashboard.frame.sessions
        real_clock = sessions.clock
        sessions.clock = lambda: real_clock() + timedelta(hours=9)
        try:
            async with http.get(dashboard, allow_redirects=False) as r:
                assert r.status == 303
        finally:
            sessions.clock = real_clock
        async with http.get(dashboard, allow_redirects=False) as r:
            assert r.status == 200
        with control_db.session() as s:
            ApiKeyStore().revoke(s, key[:12])
        async with http.get(dashboard, allow_redirects=False) as r:
            assert r.status == 303


async def test_login_is_rate_limited(control_db, dash_server):
    server = await dash_server(control_db)
    async with client() as http:
        statuses = [
            (await log_in(http, server.base_url, "rfk_wrong-key")).status for _ in range(12)
        ]
    assert statuses[0] == 401
    assert statuses[-1] == 429
    assert set(statuses) == {401, 429}
