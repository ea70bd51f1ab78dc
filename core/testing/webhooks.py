"""A webhook receiver for tests: a real HTTP server (on 127.0.0.1 by default) that can go
down and come back on the same port (to test deliveries that wait for a receiver)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class WebhookReceiver:
    """Takes ``POST /hooks`` on ``host`` and keeps every delivery's headers and body.

    ``await start()`` listens (on an ephemeral port the first time, on the same
    port afterwards), ``await stop()`` goes down; ``port`` is known from the
    first start on, so a receiver that is down can be configured as an endpoint.
    ``host`` is 127.0.0.1 unless a test gives another (a network namespace's
    address, see :mod:`recfw.testing.netns`).
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        #: ``(headers, raw body)`` of every delivery, in arrival order.
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.posts.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, reuse_address=True).start()
        self.port = self._runner.addresses[0][1]

    @property
    def url(self) -> str:
        """``http://HOST:PORT/hooks``."""
        return f"http://{self.host}:{self.port}/hooks"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def events(self) -> list[dict[str, Any]]:
        """The delivered envelopes, parsed."""
        return [json.loads(body) for _, body in self.posts]

    def types(self) -> list[str]:
        """The delivered events' types, in arrival order."""
        return [event["type"] for event in self.events]
