"""store_recording: the local file is deleted only after a confirmed store; keys stay inside."""

from __future__ import annotations

import os
from pathlib import Path

import fsspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recfw import hookimpl
from recfw.errors import StorageError
from recfw.manager import Plugins
from recfw.naming import recording_file_name
from recfw.secrets import Secret
from recfw.settings import Destination
from recfw.storage import StoredObject
from recfw.storing import check_key, store_recording
from storage_helpers import make_file

HOSTILE_KEYS = [
    "",
    ".",
    "..",
    "../escape.mkv",
    "../../etc/passwd",
    "/etc/passwd",
    "sub/../../x.mkv",
    "a/b.mkv",
    "..\\..\\x.mkv",
    "C:\\Windows\\x.mkv",
    "x\x00.mkv",
    "x\n.mkv",
    "\u202eevil.mkv",
    "a" * 300 + ".mkv",
]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_keys_are_refused_and_the_file_is_kept(key, tmp_path, builtin_plugins):
    folder = tmp_path / "a" / "b" / "recordings"
    folder.mkdir(parents=True)
    spool = tmp_path / "spool.mkv"
    make_file(spool, 100)
    before = _tree(tmp_path)

    with pytest.raises(StorageError) as exc_info:
        store_recording(
            spool, key, Destination(provider="local", bucket=str(folder)), builtin_plugins
        )

    assert "unsafe" in str(exc_info.value) or "empty" in str(exc_info.value)
    assert exc_info.value.kept_at == str(spool)
    assert spool.exists()
    assert _tree(tmp_path) == before, "nothing was written anywhere"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=st.text(min_size=0, max_size=40))
def test_any_key_stays_inside_the_prefix(key, tmp_path_factory, builtin_plugins):
    root = tmp_path_factory.mktemp("k")
    folder = root / "deep" / "recordings"
    spool = root / "spool.bin"
    spool.write_bytes(b"data")
    try:
        stored = store_recording(
            spool, key, Destination(provider="local", bucket=str(folder)), builtin_plugins
        )
    except StorageError:
        assert spool.exists()
        assert not any(p.is_file() for p in root.rglob("*") if p != spool)
        return
    target = Path(stored.location)
    assert target.parent == folder
    assert target.read_bytes() == b"data"
    assert [p for p in root.rglob("*") if p.is_file()] == [target]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(room=st.text(max_size=60))
def test_keys_from_any_room_name_land_under_the_s3_style_prefix(room, tmp_path, builtin_plugins):
    """Real keys come from recfw.naming; they always store, under the prefix."""
    from datetime import UTC, datetime

    key = recording_file_name(room, datetime(2026, 11, 23, 19, 40, 5, tzinfo=UTC), "mkv")
    assert check_key(key, "meetings/2026") == f"meetings/2026/{key}"
    spool = tmp_path / f"spool-{os.urandom(4).hex()}.mkv"
    spool.write_bytes(b"x")
    url = "memory://recfw-keys/meetings/2026"
    stored = store_recording(
        spool, key, Destination(provider="fsspec", bucket=url), builtin_plugins
    )
    assert stored.location.startswith(url + "/")
    assert "/" not in stored.location[len(url) + 1 :]
    fsspec.filesystem("memory").rm(stored.location)


# --- plugin isolation -----------------------------------------------------------


class _Sink:
    needs_credentials = True

    def __init__(self, name, behaviour):
        self.name = name
        self.behaviour = behaviour

    def validate(self, destination):
        return []

    def store(self, path, key, destination, progress):
        return self.behaviour(path, key, destination)


def _plugins(sink) -> Plugins:
    class _Plugin:
        @hookimpl
        def recfw_register_sinks(self, register):
            register(sink)

    plugins = Plugins(environ={})
    plugins.register(_Plugin(), name=f"plugin-{sink.name}")
    return plugins


def _dest(provider: str) -> Destination:
    return Destination(
        provider=provider,
        bucket="bucket/sub",
        access_key_id="AKIAEXAMPLE123",
        access_key_secret=Secret("hunter2-very-secret"),
    )


def test_a_sink_bug_is_wrapped_with_the_sink_name(tmp_path):
    def boom(path, key, destination):
        raise RuntimeError(f"oops with {destination.access_key_secret.reveal()}")

    spool = tmp_path / "rec.mkv"
    make_file(spool, 10)
    with pytest.raises(StorageError) as exc_info:
        store_recording(spool, "a.mkv", _dest("buggy"), _plugins(_Sink("buggy", boom)))
    message = str(exc_info.value)
    assert "the 'buggy' sink failed: RuntimeError" in message
    assert "hunter2-very-secret" not in message
    assert spool.exists()


def test_a_sink_storage_error_keeps_the_file(tmp_path):
    def refuse(path, key, destination):
        raise StorageError("the bucket is full")

    spool = tmp_path / "rec.mkv"
    make_file(spool, 10)
    with pytest.raises(StorageError) as exc_info:
        store_recording(spool, "a.mkv", _dest("full"), _plugins(_Sink("full", refuse)))
    assert str(exc_info.value) == f"the bucket is full (the recording was kept at {spool})"
    assert spool.exists()


def test_a_sink_returning_nonsense_keeps_the_file(tmp_path):
    spool = tmp_path / "rec.mkv"
    make_file(spool, 10)
    with pytest.raises(StorageError, match="returned NoneType, not a StoredObject"):
        store_recording(spool, "a.mkv", _dest("none"), _plugins(_Sink("none", lambda *a: None)))
    assert spool.exists()


def test_the_file_is_deleted_only_after_the_sink_returned(tmp_path):
    seen = {}

    def check(path, key, destination):
        seen["exists_during_store"] = path.exists()
        return StoredObject(location=f"x://{key}", size=path.stat().st_size)

    spool = tmp_path / "rec.mkv"
    make_file(spool, 10)
    stored = store_recording(spool, "a.mkv", _dest("ok"), _plugins(_Sink("ok", check)))
    assert seen == {"exists_during_store": True}
    assert stored == StoredObject("x://a.mkv", 10)
    assert not spool.exists()


def test_unknown_provider_keeps_the_file(tmp_path, builtin_plugins):
    spool = tmp_path / "rec.mkv"
    make_file(spool, 10)
    with pytest.raises(StorageError, match="no sink named 'nope' is installed"):
        store_recording(spool, "a.mkv", Destination(provider="nope", bucket="b"), builtin_plugins)
    assert spool.exists()


def test_missing_local_file_is_a_clear_error(tmp_path, builtin_plugins):
    with pytest.raises(StorageError, match="does not exist"):
        store_recording(
            tmp_path / "gone.mkv", "a.mkv", Destination(provider="local"), builtin_plugins
        )


def test_content_type_reaches_sinks_that_take_it_and_spares_older_ones(tmp_path):
    from recfw.storage import StoredObject

    seen = []

    class Typed(_Sink):
        def store(self, path, key, destination, progress, *, content_type=None):
            seen.append(content_type)
            return StoredObject("typed://x", path.stat().st_size)

    class Older(_Sink):  # store() from before content_type existed
        def store(self, path, key, destination, progress):
            seen.append("older called")
            return StoredObject("older://x", path.stat().st_size)

    for sink in (Typed("typed", None), Older("older", None)):
        spool = tmp_path / f"{sink.name}.mkv"
        spool.write_bytes(b"x")
        store_recording(spool, "a.mkv", _dest(sink.name), _plugins(sink), None, "video/webm")
    assert seen == ["video/webm", "older called"]
