"""Fixtures of the dashboard tests: a room server with a SQLite or PostgreSQL database."""

from __future__ import annotations

import pytest
from dash_helpers import HOST_SECRET, dash_config
from recfw.server import RoomServer
from recfw.server.ice import unrestrict_host_addresses


@pytest.fixture
async def dash_server(builtin_plugins, tmp_path, monkeypatch):
    """``await dash_server(db, config=None, control=None)`` -> a started RoomServer."""
    servers: list[RoomServer] = []
    monkeypatch.chdir(tmp_path)

    async def make(db, config=None, control=None) -> RoomServer:
        server = RoomServer(
            config or dash_config(),
            builtin_plugins,
            host_secret=HOST_SECRET,
            spool_dir=tmp_path / "spool",
            db=db,
            control=control,
        )
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()
    unrestrict_host_addresses()


def _browser_fixtures():
    """The browser tests' ``browser`` and ``shots`` fixtures (tests/browser/conftest.py)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "browser" / "conftest.py"
    spec = importlib.util.spec_from_file_location("recfw_browser_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.browser, module.shots


browser, shots = _browser_fixtures()
