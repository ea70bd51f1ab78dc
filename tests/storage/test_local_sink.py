"""The local sink: a folder on this machine, atomic and never overwriting."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from recfw.errors import StorageError
from recfw.plugins.sinks import local as local_module
from recfw.settings import Destination
from recfw.storing import store_recording
from storage_helpers import MiB, make_file, sha256

KEY = "standup-2026-11-23T19:40:05Z.mkv"


def _local(folder: str | Path | None) -> Destination:
    return Destination(provider="local", bucket=None if folder is None else str(folder))


def test_stores_in_folder_and_removes_spool(tmp_path, builtin_plugins):
    spool = tmp_path / "spool" / "rec.mkv"
    digest = make_file(spool, 200_000)
    folder = tmp_path / "out" / "nested"

    stored = store_recording(spool, KEY, _local(folder), builtin_plugins)

    target = folder / KEY
    assert stored.location == str(target)
    assert stored.size == 200_000
    assert sha256(target.read_bytes()) == digest
    assert not spool.exists()
    assert sorted(p.name for p in folder.iterdir()) == [KEY], "no temporary file is left"


def test_relative_folder_and_default_are_relative_to_cwd(tmp_path, monkeypatch, builtin_plugins):
    monkeypatch.chdir(tmp_path)
    spool_a, spool_b = tmp_path / "a.mkv", tmp_path / "b.mkv"
    make_file(spool_a, 10)
    make_file(spool_b, 20)

    one = store_recording(spool_a, KEY, _local("mine/rec"), builtin_plugins)
    two = store_recording(spool_b, KEY, _local(None), builtin_plugins)

    assert Path(one.location) == tmp_path / "mine" / "rec" / KEY
    assert Path(two.location) == tmp_path / "recordings" / KEY


def test_existing_file_is_never_overwritten(tmp_path, builtin_plugins):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / KEY).write_bytes(b"precious")
    (folder / KEY.replace(".mkv", " (2).mkv")).write_bytes(b"also precious")
    spool = tmp_path / "rec.mkv"
    digest = make_file(spool, 1000)

    stored = store_recording(spool, KEY, _local(folder), builtin_plugins)

    assert Path(stored.location).name == KEY.replace(".mkv", " (3).mkv")
    assert (folder / KEY).read_bytes() == b"precious"
    assert (folder / KEY.replace(".mkv", " (2).mkv")).read_bytes() == b"also precious"
    assert sha256(Path(stored.location).read_bytes()) == digest


def test_copies_when_hard_links_are_impossible(tmp_path, monkeypatch, builtin_plugins):
    """Another filesystem (EXDEV) or one without hard links: copy, then rename."""

    def no_links(src, dst, *args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(local_module.os, "link", no_links)
    spool = tmp_path / "rec.mkv"
    digest = make_file(spool, 9 * MiB)  # more than one copy chunk
    calls: list[tuple[int, int]] = []
    folder = tmp_path / "out"
    (folder).mkdir()
    (folder / KEY).write_bytes(b"old")

    stored = store_recording(
        spool, KEY, _local(folder), builtin_plugins, lambda d, t: calls.append((d, t))
    )

    target = Path(stored.location)
    assert target.name == KEY.replace(".mkv", " (2).mkv")
    assert sha256(target.read_bytes()) == digest
    assert (folder / KEY).read_bytes() == b"old"
    assert calls[-1] == (9 * MiB, 9 * MiB) and len(calls) >= 3
    assert sorted(p.name for p in folder.iterdir()) == sorted([KEY, target.name])


def test_hard_link_keeps_the_data_when_spool_is_removed(tmp_path, builtin_plugins):
    spool = tmp_path / "rec.mkv"
    digest = make_file(spool, 5000)
    stored = store_recording(spool, KEY, _local(tmp_path / "out"), builtin_plugins)
    target = Path(stored.location)
    assert not spool.exists()
    assert target.stat().st_nlink == 1
    assert sha256(target.read_bytes()) == digest


def test_unusable_folder_is_a_clear_error_and_keeps_the_file(tmp_path, builtin_plugins):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    spool = tmp_path / "rec.mkv"
    make_file(spool, 100)

    with pytest.raises(StorageError) as exc_info:
        store_recording(spool, KEY, _local(blocker / "sub"), builtin_plugins)

    message = str(exc_info.value)
    assert "cannot create the folder" in message and str(blocker / "sub") in message
    assert exc_info.value.kept_at == str(spool)
    assert spool.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_folder_keeps_the_file(tmp_path, builtin_plugins):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    spool = tmp_path / "rec.mkv"
    make_file(spool, 100)
    try:
        with pytest.raises(StorageError, match="cannot store the recording"):
            store_recording(spool, KEY, _local(folder), builtin_plugins)
    finally:
        folder.chmod(0o700)
    assert spool.exists()
