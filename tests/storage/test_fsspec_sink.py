"""The generic fsspec sink: memory:// and file:// URLs."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import fsspec
import pytest
from recfw.errors import StorageError
from recfw.netguard import policy_scope
from recfw.plugins.sinks import FsspecSink
from recfw.settings import Destination
from recfw.storing import store_recording
from storage_helpers import closed_port, make_file, sha256

KEY = "standup-2026-11-23T19:40:05Z.mp4"


def _dest(url: str) -> Destination:
    return Destination(provider="fsspec", bucket=url, file_format="mp4")


@pytest.fixture
def memory_url():
    root = f"recfw-test-{uuid.uuid4().hex[:8]}"
    yield f"memory://{root}/sub/folder"
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/{root}"):
        fs.rm(f"/{root}", recursive=True)


def test_memory_round_trip_with_progress(memory_url, tmp_path, builtin_plugins):
    spool = tmp_path / "rec.mp4"
    digest = make_file(spool, 70_000)
    calls = []

    stored = store_recording(
        spool, KEY, _dest(memory_url), builtin_plugins, lambda d, t: calls.append((d, t))
    )

    assert stored.location == f"{memory_url}/{KEY}"
    assert stored.size == 70_000
    assert sha256(fsspec.filesystem("memory").cat_file(stored.location)) == digest
    assert calls and calls[-1] == (70_000, 70_000)
    assert not spool.exists()


def test_memory_never_overwrites(memory_url, tmp_path, builtin_plugins):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    da, db = make_file(a, 10), make_file(b, 20)
    one = store_recording(a, KEY, _dest(memory_url), builtin_plugins)
    two = store_recording(b, KEY, _dest(memory_url), builtin_plugins)
    fs = fsspec.filesystem("memory")
    assert two.location == f"{memory_url}/{KEY.replace('.mp4', ' (2).mp4')}"
    assert sha256(fs.cat_file(one.location)) == da
    assert sha256(fs.cat_file(two.location)) == db


def test_file_url(tmp_path, builtin_plugins):
    spool = tmp_path / "spool" / "rec.mp4"
    digest = make_file(spool, 1234)
    out = tmp_path / "out"
    stored = store_recording(spool, KEY, _dest(f"file://{out}"), builtin_plugins)
    assert stored.location == f"file://{out}/{KEY}"
    assert sha256((out / KEY).read_bytes()) == digest


def test_failure_keeps_the_file(tmp_path, builtin_plugins):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    spool = tmp_path / "rec.mp4"
    make_file(spool, 10)
    with pytest.raises(StorageError) as exc_info:
        store_recording(spool, KEY, _dest(f"file://{blocker}/sub"), builtin_plugins)
    assert f"file://{blocker}/sub" in str(exc_info.value)
    assert Path(exc_info.value.kept_at) == spool and spool.exists()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("not-a-url", "is not an fsspec URL"),
        ("nosuchproto://x", "unknown fsspec protocol 'nosuchproto'"),
        ("memory://a/../b", "'..'"),
        ("memory://a/\x07b", "control characters"),
    ],
)
def test_validation(url, problem):
    errors = FsspecSink().validate(_dest(url))
    assert errors and all(e.field == "bucket" for e in errors)
    assert any(problem in e.message for e in errors), errors


PASSWORD = "PASSW0RD-fsspec"


def _recfw_log(caplog) -> str:
    """What recfw logged (fsspec's own memoryfs debug log shows its paths)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("recfw"))


def test_credentials_in_the_url_are_not_in_errors_or_logs(tmp_path, builtin_plugins, caplog):
    spool = tmp_path / "rec.mp4"
    make_file(spool, 10)
    port = closed_port()
    url = f"ftp://user:{PASSWORD}@127.0.0.1:{port}/rec"
    caplog.set_level(logging.DEBUG)
    with policy_scope([f"127.0.0.1:{port}"]), pytest.raises(StorageError) as exc_info:
        store_recording(spool, KEY, _dest(url), builtin_plugins)
    message = str(exc_info.value)
    assert f"ftp://127.0.0.1:{url.rsplit(':', 1)[1]}" in message  # the place is still named
    assert PASSWORD not in message and "user:" not in message
    assert "could not store" in _recfw_log(caplog)  # the failure was logged ...
    assert PASSWORD not in caplog.text  # ... without the password
    assert spool.exists()


def test_credentials_in_the_url_are_not_in_the_location(tmp_path, builtin_plugins, caplog):
    root = f"recfw-test-{uuid.uuid4().hex[:8]}"
    # memory:// keeps "user:password@" as part of the path: the store really goes there.
    url = f"memory://user:{PASSWORD}@{root}/sub"
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    make_file(a, 10)
    digest = make_file(b, 20)
    caplog.set_level(logging.DEBUG)
    fs = fsspec.filesystem("memory")
    try:
        store_recording(a, KEY, _dest(url), builtin_plugins)
        stored = store_recording(b, KEY, _dest(url), builtin_plugins)  # logs "exists"
        second = KEY.replace(".mp4", " (2).mp4")
        assert stored.location == f"memory://{root}/sub/{second}"
        assert sha256(fs.cat_file(f"{url}/{second}")) == digest
        assert "exists; storing as" in _recfw_log(caplog)
        assert f"stored b.mp4 as {stored.location}" in _recfw_log(caplog)
        assert PASSWORD not in _recfw_log(caplog)
    finally:
        fs.rm(f"/user:{PASSWORD}@{root}", recursive=True)


def test_a_bad_url_is_not_quoted_with_its_credentials():
    for url in (f"user:{PASSWORD}@host/rec", f"ftp//user:{PASSWORD}@host/rec"):
        (error,) = FsspecSink().validate(_dest(url))
        assert "is not an fsspec URL" in error.message
        assert PASSWORD not in error.message


def test_a_loopback_host_is_refused_unless_allowed(tmp_path, builtin_plugins, caplog):
    spool = tmp_path / "rec.mp4"
    make_file(spool, 10)
    url = f"ftp://user:{PASSWORD}@127.0.0.1:{closed_port()}/rec"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StorageError) as exc_info:
        store_recording(spool, KEY, _dest(url), builtin_plugins)
    message = str(exc_info.value)
    assert "loopback" in message and "allowedDestinations" in message
    assert PASSWORD not in message and PASSWORD not in caplog.text
    assert spool.exists()
