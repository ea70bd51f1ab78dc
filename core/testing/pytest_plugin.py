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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from recfw.manager import PluginInfo, Plugins
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
