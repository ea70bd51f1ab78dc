"""The dashboard's frame: routes, login/logout, the session and CSRF guard, rendering.

Every page under ``/dashboard`` except the login page and the static files
needs a live session (:mod:`recfw.dashboard.sessions`); every POST must carry
the session's CSRF token. Pages are rendered with Jinja2 (autoescaped), the
little JavaScript there is lives in ``static/dashboard.js`` (no inline script:
the pages are served with a Content-Security-Policy that forbids it).
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from .sessions import Login, LoginLimiter, LoginRefused, SessionStore, same

log = logging.getLogger(__name__)

PREFIX = "/dashboard"
COOKIE = "recfw_dashboard"
LOGIN_COOKIE = "recfw_dashboard_login"
HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)

#: The room server (:class:`recfw.server.RoomServer`), not imported here: the server
#: imports the dashboard, and an import (even for typing) back would be a cycle.
RoomServer = Any

Page = Callable[[web.Request, Login], Awaitable[web.StreamResponse]]


def _secure(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=PREFIX,
        httponly=True,
        secure=_secure(request),
        samesite="Strict",
    )


class Frame:
    """What every page shares: the server, the session store, templates and guards."""

    def __init__(self, server: RoomServer):
        self.server = server
        self.sessions = SessionStore(server.control_db)
        self.limiter = LoginLimiter()
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(HERE / "templates")),
            autoescape=True,
        )
        self.env.globals["PREFIX"] = PREFIX
        self.env.filters["urlquote"] = lambda v: quote(str(v), safe="")

    # --- rendering -------------------------------------------------------------------

    def render(
        self,
        request: web.Request,
        template: str,
        login: Login | None,
        *,
        http_status: int = 200,
        **context: Any,
    ) -> web.Response:
        page = self.env.get_template(template).render(
            login=login,
            csrf=login.csrf_token if login else "",
            path=request.path,
            **context,
        )
        return web.Response(
            text=page,
            status=http_status,
            content_type="text/html",
            headers={
                "Content-Security-Policy": CSP,
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin",
            },
        )

    # --- guards ------------------------------------------------------------------------

    async def login_of(self, request: web.Request) -> Login | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        return await asyncio.to_thread(self.sessions.check, token)

    def guarded(self, page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """``page`` behind the session check (and, for a POST, the CSRF check)."""

        async def handler(request: web.Request) -> web.StreamResponse:
            login = await self.login_of(request)
            if login is None:
                if request.method != "GET" or request.headers.get("X-Requested-With"):
                    return self.render(
                        request,
                        "error.html",
                        None,
                        http_status=401,
                        title="Logged out",
                        message="Your session has ended (or was never started): log in again.",
                    )
                raise web.HTTPSeeOther(f"{PREFIX}/login?next={quote(request.path_qs, safe='')}")
            if request.method == "POST":
                form = await request.post()
                if not same(str(form.get("csrf", "")), login.csrf_token):
                    log.warning("dashboard: a form without a valid CSRF token was refused")
                    return self.render(
                        request,
                        "error.html",
                        login,
                        http_status=403,
                        title="Form refused",
                        message="The form's security token is missing or wrong (an old tab, or "
                        "a form from another site). Go back, reload the page and try again.",
                    )
            return await page(request, login)

        return handler

    # --- login and logout ----------------------------------------------------------------

    async def login_page(self, request: web.Request, *, message: str = "", status: int = 200):
        if request.method == "GET" and await self.login_of(request) is not None:
            raise web.HTTPSeeOther(f"{PREFIX}/")
        token = secrets.token_urlsafe(32)
        response = self.render(
            request,
            "login.html",
            None,
            http_status=status,
            login_csrf=token,
            message=message,
            next=_safe_next(request.query.get("next")),
        )
        set_cookie(response, request, LOGIN_COOKIE, token)
        return response

    async def get_login(self, request: web.Request) -> web.StreamResponse:
        return await self.login_page(request)

    async def post_login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if not same(str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE)):
            return await self.login_page(
                request,
                message="The login form expired or came from another site: try again.",
                status=403,
            )
        wait = self.limiter.take(request.remote or "?")
        if wait > 0:
            log.warning("dashboard: too many login attempts from %s", request.remote)
            return await self.login_page(
                request,
                message=f"Too many login attempts: wait {math.ceil(wait)} seconds and try again.",
                status=429,
            )
        key = str(form.get("key", ""))
        if not key.strip():
            return await self.login_page(
                request, message="Paste an admin API key into the API key field.", status=400
            )
        try:
            token, login = await asyncio.to_thread(self.sessions.login, key)
        except LoginRefused as exc:
            log.warning("dashboard: a login was refused: %s", exc)
            return await self.login_page(request, message=str(exc), status=401)
        log.info("dashboard: key %s (%s) logged in", login.key_id, login.key_name)
        response = see_other(_safe_next(str(form.get("next", ""))) or f"{PREFIX}/")
        set_cookie(response, request, COOKIE, token)
        response.del_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    async def post_logout(self, request: web.Request, login: Login) -> web.StreamResponse:
        await asyncio.to_thread(self.sessions.logout, request.cookies.get(COOKIE))
        response = see_other(f"{PREFIX}/login")
        response.del_cookie(COOKIE, path=PREFIX)
        return response


def see_other(location: str) -> web.Response:
    """A 303 to ``location`` (a response that cookies can be set on)."""
    return web.Response(status=303, headers={"Location": location})


def _safe_next(value: str | None) -> str:
    """A same-site dashboard path to go to after logging in ('' for anything else)."""
    if not value or not value.startswith(PREFIX + "/") or "//" in value or "\\" in value:
        return ""
    return value


__all__ = ["COOKIE", "CSP", "Frame", "LOGIN_COOKIE", "PREFIX", "set_cookie"]
