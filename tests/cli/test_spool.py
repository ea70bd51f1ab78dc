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
from recfw.settings import Destination
from recfw.spool import SpoolFileBusy, SpoolLock, pending, upload

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

[server]
allowedDestinations = ["{allowed}"]
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
            allowed=s3_server.allowed_destination,
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
            allowed=s3_server.allowed_destination,
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
        with pytest.raises(SpoolFileBusy, match="in use"):
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


def _spool_files(spool: Path, count: int, size: int) -> dict[str, bytes]:
    spool.mkdir(parents=True, exist_ok=True)
    files = {}
    for i in range(count):
        name = f"room{i}-2026-11-23T19:40:{i:02d}Z.mkv"
        data = os.urandom(size)
        (spool / name).write_bytes(data)
        files[name] = data
    return files


def test_two_uploads_at_once_store_each_file_exactly_once(tmp_path, s3_server, s3_bucket):
    """Two `recfw spool upload` at once (several rounds): no crash, no duplicate, no loss."""
    config = tmp_path / "good.toml"
    config.write_text(
        WRONG.format(
            bucket=s3_bucket,
            key_id=s3_server.access_key_id,
            secret=s3_server.secret_access_key,
            endpoint=s3_server.endpoint_url,
            allowed=s3_server.allowed_destination,
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECFW_")}
    spool = tmp_path / ".recfw" / "spool"
    expected: dict[str, bytes] = {}
    for round_ in range(4):
        files = _spool_files(spool, 6, 300_000)
        # Distinct names per round: the bucket keeps every round's files.
        for name in list(files):
            renamed = name.replace("room", f"r{round_}-room")
            (spool / name).rename(spool / renamed)
            expected[renamed] = files.pop(name)
        procs = [
            subprocess.Popen(
                [RECFW, "spool", "upload", "--config", str(config)],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
        for proc, (out, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, out + err
            assert "Traceback" not in err and "FileNotFoundError" not in out + err, out + err
        stored_lines = sum(out.count("stored s3://") for out, _ in outputs)
        assert stored_lines == 6, outputs  # each file stored by exactly one of the two
        assert not list(spool.iterdir()), "every file stored and removed"
    keys = s3_server.keys(s3_bucket)
    assert keys == sorted(f"later/{name}" for name in expected), "no duplicates, none lost"
    client = s3_server.client()
    for name, data in expected.items():
        body = client.get_object(Bucket=s3_bucket, Key=f"later/{name}")["Body"].read()
        assert body == data


def test_a_file_stored_meanwhile_is_gone_not_an_error(tmp_path, builtin_plugins, monkeypatch):
    """The uploader opened the file, another one stored and removed it before the lock."""
    import fcntl as real_fcntl

    from recfw import spool as spool_module
    from recfw.spool import upload_file

    spool = tmp_path / "spool"
    [name] = _spool_files(spool, 1, 1000)
    path = spool / name
    out = tmp_path / "out"
    destination = Destination(provider="local", bucket=str(out), file_format="mkv")
    real_flock = real_fcntl.flock

    def flock_after_another_upload(fd, op):
        path.unlink()  # what another uploader does once it has stored the file
        return real_flock(fd, op)

    monkeypatch.setattr(spool_module.fcntl, "flock", flock_after_another_upload)
    result = upload_file(path, destination, builtin_plugins)
    assert result.outcome == "gone", result
    assert not out.exists(), "nothing stored a second time"


def test_a_vanished_file_is_gone_not_an_error(tmp_path, builtin_plugins):
    from recfw.spool import upload_file

    destination = Destination(provider="local", bucket=str(tmp_path / "out"), file_format="mkv")
    result = upload_file(
        tmp_path / "spool" / "x-2026-11-23T19:40:05Z.mkv", destination, builtin_plugins
    )
    assert result.outcome == "gone"


def test_an_empty_spool_file_is_removed_once_old_and_reported(tmp_path):
    """A recording killed before its first write leaves an empty file: removed, not an error."""
    spool = tmp_path / ".recfw" / "spool"
    spool.mkdir(parents=True)
    old = spool / "killed-2026-11-23T19:40:05Z.mkv"
    old.touch()
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    new = spool / "starting-2026-11-23T19:41:05Z.mkv"
    new.touch()  # a recording may be creating it this instant

    listed = recfw(tmp_path, "spool", "list")
    assert "empty" in listed.stdout and "being recorded" in listed.stdout

    result = recfw(tmp_path, "spool", "upload")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "removed" in result.stdout and old.name in result.stdout
    assert not old.exists()
    assert new.exists(), "a new empty file is left to the recording creating it"
    assert not (tmp_path / "recordings").exists(), "nothing empty was stored"

    again = recfw(tmp_path, "spool", "upload")
    assert again.returncode == 0
    assert old.name not in again.stdout, "reported once, not an error forever"


def test_an_empty_file_is_removed_in_process(tmp_path, builtin_plugins):
    from recfw.spool import upload, upload_file

    spool = tmp_path / "spool"
    spool.mkdir()
    path = spool / "killed-2026-11-23T19:40:05Z.mkv"
    path.touch()
    destination = Destination(provider="local", bucket=str(tmp_path / "out"), file_format="mkv")
    assert upload_file(path, destination, builtin_plugins).outcome == "busy"
    with pytest.raises(SpoolFileBusy):
        upload(path, destination, builtin_plugins)
    result = upload_file(path, destination, builtin_plugins, empty_grace=0)
    assert result.outcome == "empty" and "recorded as failed and removed" in result.message
    assert not path.exists()


def test_a_destination_per_file(tmp_path, builtin_plugins):
    """The spool API takes a function of the path: each file may go to its own place."""
    from recfw.spool import upload_file

    spool = tmp_path / "spool"
    names = list(_spool_files(spool, 2, 100))

    def where(path: Path) -> Destination:
        folder = tmp_path / ("a" if path.name == names[0] else "b")
        return Destination(provider="local", bucket=str(folder), file_format="mkv")

    for name in names:
        assert upload_file(spool / name, where, builtin_plugins).outcome == "stored"
    assert [p.name for p in (tmp_path / "a").iterdir()] == [names[0]]
    assert [p.name for p in (tmp_path / "b").iterdir()] == [names[1]]
