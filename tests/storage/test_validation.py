"""Destination validation of the built-in sinks, alone and through recfw.settings.validate."""

from __future__ import annotations

import pytest
from recfw.plugins.sinks import S3Sink, bucket_name_errors
from recfw.secrets import Secret
from recfw.settings import Destination, RecordingSettings, validate

VALID = [
    "abc",
    "my-bucket",
    "my.bucket.name",
    "a" * 63,
    "1bucket2",
    "recordings-2026",
]
INVALID = [
    ("ab", "3 to 63 characters"),
    ("a" * 64, "3 to 63 characters"),
    ("", "3 to 63 characters"),
    ("My-Bucket", "only lowercase letters"),
    ("my_bucket", "only lowercase letters"),
    ("my bucket", "only lowercase letters"),
    ("-bucket", "must start with a letter or digit"),
    (".bucket", "must start with a letter or digit"),
    ("bucket-", "must end with a letter or digit"),
    ("bucket.", "must end with a letter or digit"),
    ("my..bucket", "must not contain '..'"),
    ("my.-bucket", "'.-'"),
    ("192.168.5.4", "IP address"),
    ("xn--bucket", "must not start with 'xn--'"),
    ("sthree-bucket", "must not start with 'sthree-'"),
    ("bucket-s3alias", "must not end with '-s3alias'"),
    ("bucket--ol-s3", "must not end with '--ol-s3'"),
    ("bücket", "only lowercase letters"),
]


@pytest.mark.parametrize("name", VALID)
def test_valid_bucket_names(name):
    assert bucket_name_errors(name) == []


@pytest.mark.parametrize(("name", "problem"), INVALID)
def test_invalid_bucket_names(name, problem):
    errors = bucket_name_errors(name)
    assert errors, name
    assert all(e.field == "bucket" for e in errors)
    assert any(problem in e.message for e in errors), [e.message for e in errors]


def _s3(bucket: str, **kw) -> Destination:
    return Destination(
        provider="s3",
        bucket=bucket,
        access_key_id="AKIAEXAMPLE1234",
        access_key_secret=Secret("s"),
        file_format="mkv",
        **kw,
    )


@pytest.mark.parametrize(
    ("bucket", "problem"),
    [
        ("good-bucket/a/../b", "'..'"),
        ("good-bucket/./b", "'.'"),
        ("good-bucket/a\x01b", "control characters"),
        ("good-bucket/a\\b", "'/' as separator"),
        ("good-bucket/" + "x" * 900, "longer than"),
    ],
)
def test_sub_folder_sanity(bucket, problem):
    errors = S3Sink().validate(_s3(bucket))
    assert any(problem in e.message and e.field == "bucket" for e in errors), errors


def test_good_destination_has_no_errors():
    assert S3Sink().validate(_s3("good-bucket/meetings/2026", region="eu-west-1")) == []
    assert S3Sink().validate(_s3("good-bucket", endpoint_url="http://127.0.0.1:9000")) == []


def test_endpoint_and_region_fields():
    errors = S3Sink().validate(_s3("good-bucket", endpoint_url="ftp://x", region="EU WEST"))
    fields = {e.field for e in errors}
    assert fields == {"endpointUrl", "region"}
    errors = S3Sink().validate(_s3("good-bucket", endpoint_url="http://user:pw@host"))
    assert [e.field for e in errors] == ["endpointUrl"]
    assert "pw" not in str(errors)


def test_settings_validation_uses_the_sink(builtin_plugins):
    settings = RecordingSettings(
        type="cloud", destination=_s3("Bad_Bucket/x/../y"), start_trigger="automatic"
    )
    errors = validate(settings, builtin_plugins)
    bucket_errors = [e for e in errors if e.field == "recording.destination.bucket"]
    assert any("only lowercase letters" in e.message for e in bucket_errors)
    assert any("'..'" in e.message for e in bucket_errors)


def test_s3_needs_credentials_local_does_not(builtin_plugins):
    assert builtin_plugins.sinks["s3"].needs_credentials is True
    assert builtin_plugins.sinks["local"].needs_credentials is False
    assert builtin_plugins.sinks["fsspec"].needs_credentials is False
    settings = RecordingSettings(
        type="cloud",
        destination=Destination(provider="s3", bucket="good-bucket", file_format="mkv"),
        start_trigger="automatic",
    )
    fields = {e.field for e in validate(settings, builtin_plugins)}
    assert {"recording.destination.accessKeyId", "recording.destination.accessKeySecret"} <= fields
