"""The s3 sink when the network misbehaves, against a real moto server on loopback.

A test proxy (:class:`storage_helpers.TcpProxy`) sits between the sink and
moto and cuts connections mid-upload or goes down; a silent server accepts
connections and never answers; a test-controlled hosts table
(:func:`recfw.netguard.resolver_scope`) makes a name resolve differently at
validation and at connection time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from recfw import hookimpl
from recfw.errors import StorageError
from recfw.manager import Plugins
from recfw.netguard import policy_scope, resolver_scope
from recfw.plugins.sinks import S3Sink
from recfw.settings import RecordingSettings, validate
from recfw.storing import store_recording
from storage_helpers import MiB, SilentServer, TcpProxy, make_file, sha256

KEY = "standup-2026-11-23T19:40:05Z.mkv"


def _plugins_with(sink: S3Sink) -> Plugins:
    class _Plugin:
        @hookimpl
        def recfw_register_sinks(self, register):
            register(sink)

    plugins = Plugins(environ={})
    assert plugins.register(_Plugin(), name="test-s3") is not None
    return plugins


def _uploads(s3_server, bucket: str) -> list[dict]:
    return s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def _store_bounded(*args, **kwargs):
    """store_recording in a thread, with a generous bound on hanging (not a speed check)."""
    outcome: dict = {}

    def run():
        try:
            outcome["stored"] = store_recording(*args, **kwargs)
        except StorageError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=180)
    assert not thread.is_alive(), "the upload must not hang"
    return outcome


def test_a_cut_multipart_upload_is_aborted(s3_server, s3_bucket, tmp_path):
    spool = tmp_path / "rec.mkv"
    make_file(spool, 12 * MiB)
    plugins = _plugins_with(S3Sink(part_size=5 * MiB, attempts=2))
    with TcpProxy(s3_server.port, cut_after=1 * MiB) as proxy:
        destination = replace(
            s3_server.destination(s3_bucket, "sub"), endpoint_url=proxy.endpoint_url
        )
        with policy_scope([f"127.0.0.1:{proxy.port}"]):
            outcome = _store_bounded(spool, KEY, destination, plugins)
        assert proxy.cuts >= 1
    assert "error" in outcome, outcome
    assert spool.exists(), "the recording is kept"
    assert _uploads(s3_server, s3_bucket) == [], "no unfinished multipart upload is left"
    assert s3_server.keys(s3_bucket) == []


def test_an_upload_left_unfinished_is_cleaned_up_by_the_next_attempt(
    s3_server, s3_bucket, tmp_path, caplog
):
    """The connection is cut and the endpoint goes away: nothing can abort the upload then.
    The next attempt of the same recording aborts the leftover and stores the file once."""
    caplog.set_level(logging.WARNING)
    spool = tmp_path / "rec.mkv"
    digest = make_file(spool, 12 * MiB)
    plugins = _plugins_with(S3Sink(part_size=5 * MiB, attempts=1))
    with TcpProxy(s3_server.port, cut_after=1 * MiB) as proxy:
        proxy.on_cut = lambda: setattr(proxy, "down", True)
        destination = replace(
            s3_server.destination(s3_bucket, "sub"), endpoint_url=proxy.endpoint_url
        )
        with policy_scope([f"127.0.0.1:{proxy.port}"]):
            outcome = _store_bounded(spool, KEY, destination, plugins)
            assert "error" in outcome, outcome
            assert spool.exists()
            [left] = _uploads(s3_server, s3_bucket)
            assert left["Key"] == f"sub/{KEY}"
            assert "could not abort the failed upload" in caplog.text

            proxy.down = False  # the endpoint is back
            proxy.cut_after = None
            outcome = _store_bounded(spool, KEY, destination, plugins)
    assert "stored" in outcome, outcome
    assert _uploads(s3_server, s3_bucket) == []
    assert s3_server.keys(s3_bucket) == [f"sub/{KEY}"], "stored once, under its own name"
    body = s3_server.client().get_object(Bucket=s3_bucket, Key=f"sub/{KEY}")["Body"].read()
    assert sha256(body) == digest
    assert not spool.exists()


def test_stale_uploads_of_recfw_recordings_are_aborted_others_are_left(
    s3_server, s3_bucket, tmp_path
):
    """A recording's upload cannot be older than the recording (the time in its name):
    moto answers a fixed ``Initiated`` date, real S3 the real one; the later counts."""
    client = s3_server.client()
    now = datetime.now(UTC)
    old = (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ours_old = f"sub/other-room-{old}.mkv"
    ours_old_2 = f"sub/other-room-{old} (2).mp4"
    ours_recent = f"sub/running-room-{recent}.mkv"  # may be uploading right now
    theirs = "sub/notes.txt"
    nested = f"sub/deeper/another-{old}.mkv"
    elsewhere = f"other/another-{old}.mkv"
    everything = [ours_old, ours_old_2, ours_recent, theirs, nested, elsewhere]
    for key in everything:
        client.create_multipart_upload(Bucket=s3_bucket, Key=key)
    destination = s3_server.destination(s3_bucket, "sub")

    spool = tmp_path / "a.mkv"
    make_file(spool, 1000)
    store_recording(spool, KEY, destination, _plugins_with(S3Sink()))  # stale after a day
    left = sorted(u["Key"] for u in _uploads(s3_server, s3_bucket))
    assert left == sorted([ours_recent, theirs, nested, elsewhere])

    make_file(spool, 1000)
    store_recording(spool, KEY, destination, _plugins_with(S3Sink(stale_uploads_after=60)))
    left = sorted(u["Key"] for u in _uploads(s3_server, s3_bucket))
    assert left == sorted([theirs, nested, elsewhere]), "only recfw's own, in the sub-folder"


def test_a_silent_endpoint_fails_after_the_configured_attempts(spool_file, caplog):
    caplog.set_level(logging.WARNING)
    with SilentServer() as silent:
        sink = S3Sink(connect_timeout=1, read_timeout=0.5, attempts=2)
        destination = _silent_destination(silent)
        with policy_scope([f"127.0.0.1:{silent.port}"]):
            outcome = _store_bounded(spool_file, KEY, destination, _plugins_with(sink))
        assert len(silent.held) >= 2, "one connection per attempt"
    message = str(outcome["error"])
    assert "did not answer in time" in message
    assert "read timeout 0.5 s, 2 attempt(s)" in message and "[storage]" in message
    assert "attempt 1 of 2 failed" in caplog.text
    assert spool_file.exists()


def _silent_destination(silent: SilentServer):
    from recfw.secrets import Secret
    from recfw.settings import Destination

    return Destination(
        provider="s3",
        bucket="silent-bucket",
        access_key_id="AKIASILENT0000000000",
        access_key_secret=Secret("silent-secret-value"),
        endpoint_url=silent.endpoint_url,
        region="us-east-1",
        file_format="mkv",
    )


@pytest.fixture
def spool_file(tmp_path):
    path = tmp_path / "rec.mkv"
    make_file(path, 1000)
    return path


# --- the network guard at connect time --------------------------------------------


def _cloud(destination) -> RecordingSettings:
    return RecordingSettings(
        type="cloud", destination=destination, start_trigger="automatic", max_duration=60.0
    )


def test_a_loopback_endpoint_not_allow_listed_is_refused_at_validation_and_connect_time(
    s3_server, s3_bucket, spool_file, builtin_plugins
):
    with TcpProxy(s3_server.port) as proxy:
        destination = replace(s3_server.destination(s3_bucket), endpoint_url=proxy.endpoint_url)
        errors = validate(_cloud(destination), builtin_plugins)
        assert [e.field for e in errors] == ["recording.destination.endpointUrl"]
        assert "loopback" in errors[0].message

        outcome = _store_bounded(spool_file, KEY, destination, _plugins_with(S3Sink(attempts=1)))
        message = str(outcome["error"])
        assert "refusing to connect" in message and "loopback" in message
        assert proxy.connections == 0, "not one byte went there"
    assert spool_file.exists()


def test_a_name_that_resolves_elsewhere_later_is_refused_at_connect_time(
    s3_server, s3_bucket, spool_file, builtin_plugins
):
    """DNS rebinding: public at validation, loopback when the sink connects."""
    hosts: dict[str, str] = {"s3.rebind.test": "52.216.10.10"}
    with TcpProxy(s3_server.port) as proxy, resolver_scope(hosts):
        destination = replace(
            s3_server.destination(s3_bucket), endpoint_url=f"http://s3.rebind.test:{proxy.port}"
        )
        assert validate(_cloud(destination), builtin_plugins) == []

        hosts["s3.rebind.test"] = "127.0.0.1"  # what the name answers now
        outcome = _store_bounded(spool_file, KEY, destination, _plugins_with(S3Sink(attempts=1)))
        message = str(outcome["error"])
        assert "s3.rebind.test" in message and "resolves to 127.0.0.1" in message
        assert "loopback" in message
        assert proxy.connections == 0
    assert spool_file.exists()
    assert s3_server.keys(s3_bucket) == []


def test_an_allow_listed_name_is_trusted_whatever_it_resolves_to(s3_server, s3_bucket, spool_file):
    with (
        TcpProxy(s3_server.port) as proxy,
        resolver_scope({"storagehost": "127.0.0.1"}),
        policy_scope(["storagehost"]),
    ):
        destination = replace(
            s3_server.destination(s3_bucket), endpoint_url=f"http://storagehost:{proxy.port}"
        )
        stored = store_recording(spool_file, KEY, destination, _plugins_with(S3Sink()))
        assert proxy.connections >= 1
    assert stored.location == f"s3://{s3_bucket}/{KEY}"
    assert s3_server.keys(s3_bucket) == [KEY]


# --- recfw demo against an endpoint that never answers -----------------------------

SILENT_CONFIG = """
[recording]
type = "cloud"

[recording.destination]
provider = "s3"
bucket = "silent-bucket/meetings"
accessKeyId = "AKIASILENT0000000000"
accessKeySecret = "silent-secret-value-123"
fileFormat = "mkv"
endpointUrl = "{endpoint}"
region = "us-east-1"

[server]
allowedDestinations = ["127.0.0.1:{port}"]

[storage]
connectTimeout = 1
readTimeout = 4
attempts = 2
"""


def test_demo_against_a_silent_endpoint_shows_progress_keeps_the_file_and_says_why(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import av

    recfw = str(Path(sys.executable).with_name("recfw"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECFW_")}
    with SilentServer() as silent:
        config = tmp_path / "recfw.toml"
        config.write_text(SILENT_CONFIG.format(endpoint=silent.endpoint_url, port=silent.port))
        result = subprocess.run(
            [recfw, "demo", "--duration", "3", "--config", str(config)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    out, err = result.stdout, result.stderr
    assert result.returncode == 1, out + err
    assert "storing demo-" in out and "read 4 s; 2 attempt(s) per request" in out
    assert "still storing demo-" in out, "progress while storage does not answer"
    assert "attempt 1 of 2 failed" in err
    assert "Recording failed:" in out and "did not answer in time" in out
    assert "[storage] in the config file sets them" in out
    assert "silent-secret-value-123" not in out + err
    [kept] = list((tmp_path / ".recfw" / "spool").iterdir())
    assert f"kept at {kept}" in out
    with av.open(str(kept)) as container:
        assert sum(1 for _ in container.decode(video=0)) > 30
