"""Nothing is lost: recordings left in the spool (failed store, killed process) are
listed and stored later with ``recfw spool``; a running recording is never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import av
import pytest
from recfw.errors import StorageError
from recfw.settings import Destination
from recfw.spool import SpoolLock, pending, upload

from .test_demo import RECFW, run_demo

WRONG = """
[recording]
type = "cloud"

[recording.destination]
provider = "s3"
bucket = "{bucket}/later"
accessKeyId = "{key_id}"
accessKeySecret = "{secret}"
fileFormat = "mkv"
endpointUrl = "{endpoint}"
"""


def recfw(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECFW_")}
    return subprocess.run(
        [RECFW, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_failed_upload_is_stored_later_with_the_right_credentials(tmp_path, s3_server, s3_bucket):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        WRONG.format(
            bucket=s3_bucket,
            key_id=s3_server.access_key_id,
            secret="not-the-secret",
            endpoint=s3_server.endpoint_url,
        )
    )
    assert run_demo(tmp_path, "--config", str(bad)).returncode == 1
    listed = recfw(tmp_path, "spool", "list")
    [kept] = list((tmp_path / ".recfw" / "spool").iterdir())
    assert kept.name in listed.stdout

    # The next run says so.
    again = run_demo(tmp_path, "--config", str(bad))
    assert "wait in .recfw/spool" in again.stdout

    good = tmp_path / "good.toml"
    good.write_text(
        WRONG.format(
            bucket=s3_bucket,
            key_id=s3_server.access_key_id,
            secret=s3_server.secret_access_key,
            endpoint=s3_server.endpoint_url,
        )
    )
    result = recfw(tmp_path, "spool", "upload", "--config", str(good))
    assert result.returncode == 0, result.stdout + result.stderr
    assert s3_server.secret_access_key not in result.stdout + result.stderr
    keys = s3_server.keys(s3_bucket)
    assert f"later/{kept.name}" in keys and len(keys) == 2
    assert not list((tmp_path / ".recfw" / "spool").iterdir())
    assert "no recordings waiting" in recfw(tmp_path, "spool", "list").stdout


def test_a_killed_recording_is_recoverable(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECFW_")}
    proc = subprocess.Popen(
        [RECFW, "demo", "--duration", "30"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    spool = tmp_path / ".recfw" / "spool"
    try:
        deadline = time.monotonic() + 60
        # Wait until a few seconds of media reached the disk.
        while time.monotonic() < deadline:
            files = list(spool.glob("*.mkv")) if spool.exists() else []
            if files and files[0].stat().st_size > 60_000:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the demo never wrote its recording")
        assert [e.in_use for e in pending(spool)] == [True]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    [entry] = pending(spool)
    assert not entry.in_use  # the lock died with the process
    with av.open(str(entry.path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 30

    result = recfw(tmp_path, "spool", "upload")
    assert result.returncode == 0, result.stdout + result.stderr
    [stored] = list((tmp_path / "recordings").iterdir())
    assert stored.name == entry.path.name
    # Cut off by the kill: no duration in the header, but it decodes up to the cut.
    with av.open(str(stored)) as container:
        sizes = {(f.width, f.height) for f in container.decode(video=0)}
    assert sizes == {(1280, 720)}


def test_upload_refuses_a_file_a_recording_holds(tmp_path, builtin_plugins):
    spool = tmp_path / "spool"
    spool.mkdir()
    path = spool / "room-2026-11-23T19:40:05Z.mkv"
    path.write_bytes(b"x" * 100)
    destination = Destination(provider="local", bucket=str(tmp_path / "out"), file_format="mkv")
    with SpoolLock(path):
        assert [e.in_use for e in pending(spool)] == [True]
        with pytest.raises(StorageError, match="in use by a running recording"):
            upload(path, destination, builtin_plugins)
        assert path.exists()
    stored = upload(path, destination, builtin_plugins)
    assert stored.size == 100 and not path.exists()


def test_upload_only_takes_files_from_the_spool(tmp_path):
    elsewhere = tmp_path / "mine.mkv"
    elsewhere.write_bytes(b"keep me")
    result = recfw(tmp_path, "spool", "upload", str(elsewhere))
    assert result.returncode == 2
    assert "not in the spool folder" in result.stderr
    assert elsewhere.read_bytes() == b"keep me"
