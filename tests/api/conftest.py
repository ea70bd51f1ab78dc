"""Fixtures for the REST API tests: a real room server on 127.0.0.1 with a real database
(SQLite and PostgreSQL) and a virtual clock."""

from __future__ import annotations

import pytest
from api_helpers import HOST_SECRET, Clock, api_config
from recfw.server import RoomServer
from recfw.server.ice import unrestrict_host_addresses


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def api_server(builtin_plugins, tmp_path, monkeypatch, control_db, clock):
    """``await api_server(trigger="none", config=None)`` -> a started RoomServer on
    ``control_db`` with the virtual ``clock`` (closed after the test)."""
    servers: list[RoomServer] = []
    monkeypatch.chdir(tmp_path)

    async def make(trigger: str = "none", config=None, db=None, control=None) -> RoomServer:
        server = RoomServer(
            config or api_config(trigger),
            builtin_plugins,
            host_secret=HOST_SECRET,
            spool_dir=tmp_path / "spool",
            db=db or control_db,
            control=control,
            clock=clock,
        )
        server.meeting_clock.every = 3600.0  # the tests sweep by hand
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()
    unrestrict_host_addresses()
