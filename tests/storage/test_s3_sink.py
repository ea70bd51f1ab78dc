"""The s3 sink against a real S3 endpoint (moto server on 127.0.0.1, credentials enforced)."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from recfw import hookimpl
from recfw.errors import StorageError
from recfw.manager import Plugins
from recfw.netguard import policy_scope
from recfw.plugins.sinks import S3Sink
from recfw.secrets import Secret
from recfw.settings import Destination
from recfw.storing import store_recording
from storage_helpers import MiB, closed_port, make_file, sha256

KEY = "standup-2026-11-23T19:40:05Z.mkv"
WRONG_SECRET = "wr0ng-SECRET-value-that-must-never-show-up-1234"


def _plugins_with(sink: S3Sink) -> Plugins:
    class _Plugin:
        @hookimpl
        def recfw_register_sinks(self, register):
            register(sink)

    plugins = Plugins(environ={})
    assert plugins.register(_Plugin(), name="test-s3") is not None
    return plugins


def _get(s3_server, bucket: str, key: str) -> bytes:
    return s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def test_round_trip_into_sub_folder(s3_server, s3_bucket, tmp_path, builtin_plugins, caplog):
    caplog.set_level(logging.DEBUG)
    spool = tmp_path / "spool" / "rec.mkv"
    digest = make_file(spool, 300_000)
    destination = s3_server.destination(s3_bucket, "/meetings/2026/")

    stored = store_recording(spool, KEY, destination, builtin_plugins)

    assert stored.location == f"s3://{s3_bucket}/meetings/2026/{KEY}"
    assert stored.size == 300_000
    assert s3_server.keys(s3_bucket) == [f"meetings/2026/{KEY}"]
    assert sha256(_get(s3_server, s3_bucket, f"meetings/2026/{KEY}")) == digest
    assert not spool.exists(), "the spool file is deleted once the upload is confirmed"
    assert s3_server.secret_access_key not in caplog.text


def test_large_file_goes_up_in_parts_with_progress(s3_server, s3_bucket, tmp_path):
    spool = tmp_path / "big.mkv"
    size = 12 * MiB
    digest = make_file(spool, size)
    calls: list[tuple[int, int]] = []
    plugins = _plugins_with(S3Sink(part_size=5 * MiB))

    stored = store_recording(
        spool,
        KEY,
        s3_server.destination(s3_bucket, "sub"),
        plugins,
        lambda d, t: calls.append((d, t)),
    )

    assert stored.size == size
    head = s3_server.client().head_object(Bucket=s3_bucket, Key=f"sub/{KEY}")
    assert head["ContentLength"] == size
    assert head["ETag"].strip('"').endswith("-3"), "12 MiB in 5 MiB parts is a 3-part upload"
    assert sha256(_get(s3_server, s3_bucket, f"sub/{KEY}")) == digest
    done = [d for d, _ in calls]
    assert all(t == size for _, t in calls)
    assert done == sorted(done) and len(set(done)) >= 3
    assert calls[-1] == (size, size)


def test_existing_object_is_never_replaced(s3_server, s3_bucket, tmp_path, builtin_plugins):
    destination = s3_server.destination(s3_bucket, "sub")
    first, second = tmp_path / "a.mkv", tmp_path / "b.mkv"
    d1, d2 = make_file(first, 1000), make_file(second, 2000)

    one = store_recording(first, KEY, destination, builtin_plugins)
    two = store_recording(second, KEY, destination, builtin_plugins)

    stem = KEY.removesuffix(".mkv")
    assert one.location.endswith(f"sub/{KEY}")
    assert two.location == f"s3://{s3_bucket}/sub/{stem} (2).mkv"
    assert sha256(_get(s3_server, s3_bucket, f"sub/{KEY}")) == d1
    assert sha256(_get(s3_server, s3_bucket, f"sub/{stem} (2).mkv")) == d2


def _assert_failed_cleanly(exc_info, spool: Path, caplog, *secrets: str) -> str:
    message = str(exc_info.value)
    assert spool.exists(), "the local file must survive a failed upload"
    assert exc_info.value.kept_at == str(spool)
    assert str(spool) in message
    assert "Traceback" not in message and "\n" not in message
    for secret in secrets:
        assert secret not in message
        assert secret not in caplog.text
    return message


@pytest.fixture
def spool(tmp_path) -> Path:
    path = tmp_path / "spool" / "rec.mkv"
    make_file(path, 50_000)
    return path


def test_unknown_access_key_is_a_clear_error(s3_server, s3_bucket, spool, caplog, builtin_plugins):
    caplog.set_level(logging.DEBUG)
    destination = s3_server.destination(
        s3_bucket, "sub", key_id="AKIAUNKNOWNKEY000000", secret=WRONG_SECRET
    )
    with pytest.raises(StorageError) as exc_info:
        store_recording(spool, KEY, destination, builtin_plugins)
    message = _assert_failed_cleanly(exc_info, spool, caplog, WRONG_SECRET)
    assert "S3 rejected the credentials (InvalidAccessKeyId)" in message
    assert repr(s3_bucket) in message
    assert "AKIAUNKNOWNKEY000000" not in message  # the key id is shown masked
    assert s3_server.keys(s3_bucket) == []


def test_wrong_secret_is_a_clear_error(s3_server, s3_bucket, spool, caplog, builtin_plugins):
    caplog.set_level(logging.DEBUG)
    destination = s3_server.destination(s3_bucket, secret=WRONG_SECRET)
    with pytest.raises(StorageError) as exc_info:
        store_recording(spool, KEY, destination, builtin_plugins)
    message = _assert_failed_cleanly(
        exc_info, spool, caplog, WRONG_SECRET, s3_server.secret_access_key
    )
    assert "S3 rejected the credentials (SignatureDoesNotMatch)" in message


def test_missing_bucket_is_a_clear_error(s3_server, spool, caplog, builtin_plugins):
    caplog.set_level(logging.DEBUG)
    destination = s3_server.destination("no-such-bucket-here", "sub")
    with pytest.raises(StorageError) as exc_info:
        store_recording(spool, KEY, destination, builtin_plugins)
    message = _assert_failed_cleanly(exc_info, spool, caplog, s3_server.secret_access_key)
    assert "'no-such-bucket-here'" in message and "does not exist" in message


def test_key_without_permissions_is_access_denied(
    s3_server, s3_bucket, spool, caplog, builtin_plugins
):
    key_id, secret = s3_server.create_user()  # a valid key with no policy at all
    caplog.set_level(logging.DEBUG)  # (after creating the key: botocore logs its response)
    destination = s3_server.destination(s3_bucket, key_id=key_id, secret=secret)
    with pytest.raises(StorageError) as exc_info:
        store_recording(spool, KEY, destination, builtin_plugins)
    message = _assert_failed_cleanly(exc_info, spool, caplog, secret)
    assert "S3 denied access (AccessDenied)" in message


def test_write_only_key_stores_without_listing(s3_server, s3_bucket, spool, builtin_plugins):
    iam = s3_server.client("iam")
    key_id, secret = s3_server.create_user("writer-only")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}],
    }
    iam.put_user_policy(UserName="writer-only", PolicyName="put", PolicyDocument=json.dumps(policy))
    destination = s3_server.destination(s3_bucket, "drop", key_id=key_id, secret=secret)

    stored = store_recording(spool, KEY, destination, builtin_plugins)

    assert stored.location == f"s3://{s3_bucket}/drop/{KEY}"
    assert s3_server.keys(s3_bucket) == [f"drop/{KEY}"]
    assert not spool.exists()


def test_unreachable_endpoint_fails_in_bounded_time(s3_server, spool, caplog, builtin_plugins):
    caplog.set_level(logging.DEBUG)
    port = closed_port()
    destination = replace(
        s3_server.destination("some-bucket"), endpoint_url=f"http://127.0.0.1:{port}"
    )
    outcome: dict = {}

    def run():
        try:
            with policy_scope([f"127.0.0.1:{port}"]):
                store_recording(spool, KEY, destination, builtin_plugins)
        except StorageError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=120)  # a bound on hanging forever, not a speed assertion
    assert not thread.is_alive(), "an unreachable endpoint must not hang the upload"
    assert "error" in outcome
    message = str(outcome["error"])
    assert "cannot reach the S3 endpoint" in message and "connection refused" in message
    assert "'some-bucket'" in message
    assert spool.exists()
    assert s3_server.secret_access_key not in message
    assert s3_server.secret_access_key not in caplog.text


def test_secret_is_revealed_only_to_the_client(s3_server, s3_bucket):
    destination = s3_server.destination(s3_bucket)
    assert isinstance(destination.access_key_secret, Secret)
    assert s3_server.secret_access_key not in repr(destination)
    assert s3_server.secret_access_key not in str(destination.to_dict())


def test_silent_endpoint_times_out(spool, tmp_path):
    """An endpoint that accepts connections but never answers fails on the read timeout."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    port = listener.getsockname()[1]
    sink = S3Sink(connect_timeout=0.5, read_timeout=0.5, attempts=1)
    destination = Destination(
        provider="s3",
        bucket="silent-bucket/sub",
        access_key_id="AKIASILENT0000000000",
        access_key_secret=Secret("silent-secret-value"),
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
    )
    try:
        with policy_scope([f"127.0.0.1:{port}"]), pytest.raises(StorageError) as exc_info:
            store_recording(spool, KEY, destination, _plugins_with(sink))
    finally:
        stop.set()
        acceptor.join()
        for conn in held:
            conn.close()
        listener.close()
    message = str(exc_info.value)
    assert "cannot reach the S3 endpoint" in message
    assert "did not answer in time" in message
    assert "silent-secret-value" not in message
    assert spool.exists()


def test_the_encoders_content_type_is_stored(s3_server, s3_bucket, tmp_path, builtin_plugins):
    spool = tmp_path / "spool" / "rec.mp4"
    make_file(spool, 1000)
    destination = s3_server.destination(s3_bucket, "typed")
    store_recording(spool, KEY, destination, builtin_plugins, content_type="video/mp4")
    head = s3_server.client().head_object(Bucket=s3_bucket, Key=f"typed/{KEY}")
    assert head["ContentType"] == "video/mp4"  # not guessed from ".mkv"
