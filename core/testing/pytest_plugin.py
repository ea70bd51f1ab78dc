"""recfw's pytest plugin (a ``pytest11`` entry point): fixtures for plugin authors.

Installed with recfw, it is active in every pytest run of an environment that
has recfw; nothing here imports anything heavy until a fixture is used.

``recfw_plugins``
    A fresh :class:`recfw.manager.Plugins` with every installed entry point
    loaded (environment allow/block lists ignored).
``register_plugin``
    ``register_plugin(obj, name=None, plugins=None) -> PluginInfo``: register a
    plugin object (module, class or instance with ``@recfw.hookimpl``
    functions) for one test. By default it goes into the process-wide plugins
    (``recfw.manager.load_plugins()``, what the CLI and engine use); after the
    test it is unregistered and anything it replaced is restored.
``s3_endpoint``
    A real S3 endpoint: moto in server mode on 127.0.0.1 with enforced
    credentials (:class:`recfw.testing.s3server.S3Server`), one per session.
``temp_room``
    A :class:`recfw.testing.rooms.TempRoom` named ``test-room`` driven by the
    ``automatic`` trigger; set ``temp_room.trigger`` to test another one.
``postgres_server``
    A real PostgreSQL server (Debian's ``postgresql`` package) on 127.0.0.1 in
    a temporary folder (:class:`recfw.testing.postgres.PostgresServer`), one
    per session. Skipped where PostgreSQL is not installed, except under CI
    (``CI`` set), where that is an error.
``redis_server``
    A real Redis server (Debian's ``redis-server``) on 127.0.0.1 at a free port,
    persistence off, in a temporary folder, started for one test and stopped
    after it (:class:`recfw.testing.redis.RedisServer`; ``.url`` is its URL).
    Skipped where Redis is not installed, except under CI (``CI`` set).
``janus_server``
    A real Janus WebRTC server (Debian's ``janus``: VideoRoom plugin, WebSocket
    transport) confined to loopback, configured in a temporary folder
    (:class:`recfw.testing.janus.JanusServer`), one per test module. Skipped
    where Janus is not installed, except under CI (``CI`` set).
``control_db``
    A migrated :class:`recfw.control.Database`, once on SQLite (a file in the
    test's temporary folder) and once on PostgreSQL (a fresh database copied
    from a migrated template): tests that use it run on both.
``netns_network``
    A :class:`recfw.testing.netns.Network`: "hosts" (network namespaces with
    private addresses, only inside them) on one bridge, removed after the test.
    Skipped with the reason where namespaces cannot be made (not root).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from recfw.control import Database
    from recfw.manager import PluginInfo, Plugins
    from recfw.testing.janus import JanusServer
    from recfw.testing.netns import Network
    from recfw.testing.postgres import PostgresServer
    from recfw.testing.redis import RedisServer
    from recfw.testing.rooms import TempRoom
    from recfw.testing.s3server import S3Server


@pytest.fixture
def recfw_plugins() -> Plugins:
    """A fresh :class:`Plugins` with every installed entry point loaded."""
    from recfw.manager import Plugins

    plugins = Plugins(environ={})
    plugins.load_entry_points()
    return plugins


@pytest.fixture
def register_plugin() -> Iterator[Callable[..., PluginInfo]]:
    """Register a plugin object for one test; unregistered (and the registry restored) after."""
    from recfw.manager import KINDS, load_plugins

    done: list[tuple[Plugins, str, dict[str, dict[str, Any]]]] = []

    def register(obj: Any, name: str | None = None, plugins: Plugins | None = None) -> PluginInfo:
        target = plugins if plugins is not None else load_plugins()
        snapshot = {kind: dict(getattr(target, kind)) for kind in KINDS}
        name = name or f"test-plugin-{len(done)}-{id(obj):x}"
        failures = len(target.failures)
        info = target.register(obj, name=name)
        if info is None:
            problems = "; ".join(str(f) for f in target.failures[failures:])
            raise AssertionError(f"the plugin did not register: {problems}")
        done.append((target, name, snapshot))
        return info

    yield register
    for target, name, snapshot in reversed(done):
        target.unregister(name)
        for kind, registry in snapshot.items():
            current = getattr(target, kind)
            current.clear()
            current.update(registry)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Server]:
    """A moto S3 server on 127.0.0.1 (credentials enforced) for the whole session.

    ``s3_endpoint.create_bucket()``, ``s3_endpoint.destination(bucket, prefix)``
    and ``s3_endpoint.client()`` do the rest; see :class:`S3Server`.
    """
    pytest.importorskip("moto", reason="s3_endpoint needs moto[server] (pip install recfw[test])")
    from recfw.testing.s3server import S3Server

    with S3Server() as server:
        yield server


@pytest.fixture
def temp_room(recfw_plugins: Plugins) -> TempRoom:
    """A room driven by the ``automatic`` trigger through ``recfw.triggers.step``."""
    from recfw.testing.rooms import TempRoom

    return TempRoom(recfw_plugins.trigger("automatic"))


def service_missing(reason: str) -> NoReturn:
    """A system service a test needs (PostgreSQL, Redis, Janus) is not installed: skip
    the test with ``reason``, except under CI (``CI`` set), which installs every
    service, so a missing one is a broken setup and fails the test."""
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 for the whole session (see :class:`PostgresServer`)."""
    from recfw.testing.postgres import PostgresServer, PostgresUnavailable, find_bin_dir

    try:
        find_bin_dir()
    except PostgresUnavailable as exc:
        service_missing(str(exc))
    with PostgresServer() as server:
        yield server


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis server on 127.0.0.1 for one test (see :class:`RedisServer`)."""
    from recfw.testing.redis import RedisServer, RedisUnavailable, find_redis_server

    try:
        find_redis_server()
    except RedisUnavailable as exc:
        service_missing(str(exc))
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def janus_server() -> Iterator[JanusServer]:
    """Janus on 127.0.0.1 (an ephemeral port) for one test module (see :class:`JanusServer`):
    ``janus_server.url``, ``janus_server.api_secret``, ``janus_server.pid``."""
    from recfw.testing.janus import JANUS_MISSING, JanusServer, janus_available

    if not janus_available():
        service_missing(JANUS_MISSING)
    with JanusServer() as server:
        yield server


@pytest.fixture(scope="session")
def _control_pg_template(postgres_server: PostgresServer) -> str:
    """The name of a database migrated to the newest schema, copied for each test."""
    from recfw.control.crypto import Cipher, new_key
    from recfw.control.db import Database

    name = "recfw_template"
    db = Database(postgres_server.create_database(name), Cipher([new_key().encode()], "test"))
    try:
        db.upgrade()
    finally:
        db.dispose()
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def control_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated control-plane database, on SQLite and on PostgreSQL (one test each)."""
    from recfw.control.crypto import Cipher, new_key
    from recfw.control.db import Database

    cipher = Cipher([new_key().encode()], "test key")
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'recfw.db'}", cipher, data_dir=tmp_path)
        db.upgrade()
        yield db
        db.dispose()
        return
    server = request.getfixturevalue("postgres_server")
    template = request.getfixturevalue("_control_pg_template")
    url = server.create_database(template=template)
    db = Database(url, cipher, data_dir=tmp_path)
    yield db
    db.dispose()
    server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def netns_network() -> Iterator[Network]:
    """Network namespaces as hosts on one private switch (see :mod:`recfw.testing.netns`)."""
    from recfw.testing.netns import Network, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with Network() as network:
        yield network
