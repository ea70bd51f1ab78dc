"""Shared pytest fixtures. Keep them generic: every test directory may use them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from recfw import netguard
from recfw.manager import Plugins
from recfw.testing.s3server import S3Server

# Property tests must pass on a loaded machine: no per-example deadline, and a slow
# data generation is the machine's load, not a bug (the examples are still all run).
settings.register_profile(
    "loaded-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("loaded-machine")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3 endpoint (moto server) on 127.0.0.1 with enforced credentials.

    ``s3_server.destination(bucket, prefix)`` gives a ready ``s3`` Destination;
    ``s3_server.client()`` a boto3 client with valid credentials.
    """
    with S3Server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A fresh, empty bucket on :func:`s3_server` (deleted after the test)."""
    name = s3_server.create_bucket()
    yield name
    s3_server.delete_bucket(name)


@pytest.fixture
def builtin_plugins() -> Plugins:
    """A fresh :class:`Plugins` with every installed entry point loaded (env settings ignored)."""
    plugins = Plugins(environ={})
    plugins.load_entry_points()
    return plugins


@pytest.fixture(autouse=True, scope="session")
def _no_dns() -> Iterator[None]:
    """Names recfw's network guard resolves come from a test table, never from DNS
    (tests only reach loopback). Tests map their own names with
    ``netguard.resolver_scope({...})``."""
    with netguard.resolver_scope({"localhost": ["127.0.0.1", "::1"]}):
        yield
