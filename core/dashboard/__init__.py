"""The dashboard, served by ``recfw run`` under ``/dashboard`` (see docs/dashboard.md).

Log in with an admin API key (``recfw keys create --admin``). Pages:
Configure → Recording (the organization's defaults, Test connection),
Recordings, Meetings and Webhooks. One module per page; :mod:`.app` holds the
frame (routes, session and CSRF guard, rendering), :mod:`.sessions` the logins.
"""

from __future__ import annotations

from aiohttp import web

from .app import HERE, PREFIX, Frame, RoomServer
from .configure import ConfigurePage, load_stored_defaults
from .meetings import MeetingsPage
from .recordings import RecordingsPage
from .webhooks import WebhooksPage


class Dashboard:
    """The dashboard of one room server; :meth:`register` adds its routes to the app."""

    def __init__(self, server: RoomServer):
        self.frame = Frame(server)
        self.configure = ConfigurePage(self.frame)
        self.recordings = RecordingsPage(self.frame)
        self.meetings = MeetingsPage(self.frame)
        self.webhooks = WebhooksPage(self.frame)
        load_stored_defaults(server)

    def register(self, app: web.Application) -> None:
        f, g, r = self.frame, self.frame.guarded, app.router
        p = PREFIX
        r.add_static(f"{p}/static/", HERE / "static", show_index=False)
        r.add_get(p, self._home)
        r.add_get(f"{p}/", g(self._root))
        r.add_get(f"{p}/login", f.get_login)
        r.add_post(f"{p}/login", f.post_login)
        r.add_post(f"{p}/logout", g(f.post_logout))
        r.add_get(f"{p}/configure", g(self.configure.get))
        r.add_post(f"{p}/configure", g(self.configure.save))
        r.add_post(f"{p}/configure/test", g(self.configure.test))
        r.add_get(f"{p}/recordings", g(self.recordings.get))
        r.add_get(f"{p}/rows", g(self.recordings.rows))
        r.add_get(f"{p}/recordings/{{id}}/download", g(self.recordings.download))
        r.add_post(f"{p}/recordings/{{id}}/delete", g(self.recordings.delete))
        r.add_post(f"{p}/recordings/{{id}}/retry", g(self.recordings.retry))
        r.add_get(f"{p}/meetings", g(self.meetings.get))
        r.add_post(f"{p}/meetings", g(self.meetings.create))
        r.add_post(f"{p}/meetings/{{id}}/delete", g(self.meetings.delete))
        r.add_get(f"{p}/webhooks", g(self.webhooks.get))
        r.add_post(f"{p}/webhooks", g(self.webhooks.add))
        r.add_post(f"{p}/webhooks/replay", g(self.webhooks.replay))
        r.add_post(f"{p}/webhooks/{{id}}/disable", g(self.webhooks.disable))

    async def _home(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther(f"{PREFIX}/")

    async def _root(self, request: web.Request, login) -> web.StreamResponse:
        raise web.HTTPSeeOther(f"{PREFIX}/recordings")


__all__ = ["Dashboard"]
