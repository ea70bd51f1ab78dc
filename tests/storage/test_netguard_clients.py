"""The guard's ready-made hooks for HTTP clients (what a webhook sender uses), against a
real HTTP server on loopback: aiohttp through :func:`recfw.netguard.aiohttp_connector_args`,
``http.client`` through :func:`recfw.netguard.create_connection`."""

from __future__ import annotations

import asyncio
import http.client
import http.server
import threading

import aiohttp
import pytest
from recfw import netguard
from recfw.netguard import DestinationRefused, policy_scope, resolver_scope


@pytest.fixture
def receiver():
    """A loopback HTTP server counting the requests it gets."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            hits.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], hits
    server.shutdown()
    server.server_close()


async def _post(url: str) -> int:
    connector = aiohttp.TCPConnector(**netguard.aiohttp_connector_args())
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(url, data=b"{}", allow_redirects=False) as response:
            return response.status


def test_aiohttp_refuses_loopback_unless_allowed(receiver):
    port, hits = receiver
    with policy_scope([], extend=False):
        with pytest.raises(aiohttp.ClientConnectorError) as exc_info:
            asyncio.run(_post(f"http://127.0.0.1:{port}/hook"))
        assert netguard.find_refusal(exc_info.value) is not None
        assert hits == []
    with policy_scope([f"127.0.0.1:{port}"], extend=False):
        assert asyncio.run(_post(f"http://127.0.0.1:{port}/hook")) == 204
    assert hits == ["/hook"]


def test_aiohttp_refuses_a_name_that_now_resolves_to_loopback(receiver):
    port, hits = receiver
    hosts = {"hooks.example.test": "127.0.0.1"}
    with policy_scope([], extend=False), resolver_scope(hosts):
        with pytest.raises(aiohttp.ClientConnectorError) as exc_info:
            asyncio.run(_post(f"http://hooks.example.test:{port}/hook"))
        refusal = netguard.find_refusal(exc_info.value)
        assert refusal is not None and "resolves to 127.0.0.1" in refusal.reason
    with policy_scope(["hooks.example.test"], extend=False), resolver_scope(hosts):
        assert asyncio.run(_post(f"http://hooks.example.test:{port}/hook")) == 204
    assert hits == ["/hook"]


def _post_blocking(host: str, port: int) -> int:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn._create_connection = netguard.create_connection  # the documented hook
    try:
        conn.request("POST", "/hook", body=b"{}")
        return conn.getresponse().status
    finally:
        conn.close()


def test_http_client_through_create_connection(receiver):
    port, hits = receiver
    with policy_scope([], extend=False), resolver_scope({"hooks.example.test": "127.0.0.1"}):
        with pytest.raises(DestinationRefused):
            _post_blocking("127.0.0.1", port)
        with pytest.raises(DestinationRefused):
            _post_blocking("hooks.example.test", port)
    assert hits == []
    with policy_scope([f"127.0.0.1:{port}"], extend=False):
        assert _post_blocking("127.0.0.1", port) == 204
    assert hits == ["/hook"]
