"""recfw.testing.s3server: a real S3 endpoint that really checks credentials."""

from __future__ import annotations

import botocore.exceptions
import pytest
from moto import settings as moto_settings
from recfw.testing.s3server import S3Server


def _code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def test_server_enforces_credentials_and_restores_the_setting():
    before = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
    with S3Server() as server:
        assert server.endpoint_url.startswith("http://127.0.0.1:")
        bucket = server.create_bucket()
        server.client().put_object(Bucket=bucket, Key="k", Body=b"v")
        assert server.keys(bucket) == ["k"]

        bad = server.client(key_id="AKIANOSUCHKEY0000000", secret="x")
        with pytest.raises(botocore.exceptions.ClientError) as exc_info:
            bad.list_objects_v2(Bucket=bucket)
        assert _code(exc_info) == "InvalidAccessKeyId"

        wrong_secret = server.client(secret="not-the-secret")
        with pytest.raises(botocore.exceptions.ClientError) as exc_info:
            wrong_secret.list_objects_v2(Bucket=bucket)
        assert _code(exc_info) == "SignatureDoesNotMatch"

        server.delete_bucket(bucket)
        assert bucket not in [b["Name"] for b in server.client().list_buckets()["Buckets"]]
    assert moto_settings.INITIAL_NO_AUTH_ACTION_COUNT == before


def test_fixture_buckets_are_fresh(s3_server, s3_bucket):
    assert s3_server.keys(s3_bucket) == []
    destination = s3_server.destination(s3_bucket, "/a/b/")
    assert destination.bucket == f"{s3_bucket}/a/b"
    assert destination.prefix == "a/b"
    assert destination.endpoint_url == s3_server.endpoint_url
