"""Role-based S3 access (``authenticationType: roleBased``) against moto's STS on loopback.

The moto server of :class:`recfw.testing.s3server.S3Server` serves IAM, STS and
S3 with IAM enforcement on. recfw's own identity (the one that calls
``sts:AssumeRole``) is an IAM user allowed *only* ``sts:AssumeRole``: every S3
request the sink makes must therefore be signed with the role's temporary
credentials, and moto checks them against the role's own policy.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fsspec.asyn import get_loop, sync
from recfw.errors import StorageError
from recfw.plugins.sinks.s3 import S3Sink
from recfw.plugins.sinks.s3_role import STS_ENDPOINT_ENV, TOKEN_FILE_ENV
from recfw.recording import Destination
from recfw.storing import store_recording
from storage_helpers import closed_port, make_file, sha256

pytest.importorskip("moto")

_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
        {
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/recfw"},
            "Action": "sts:AssumeRoleWithWebIdentity",
        },
    ],
}
_ALLOW_S3 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}
_ALLOW_ASSUME = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
}


@pytest.fixture
def role_env(s3_endpoint, monkeypatch, tmp_path):
    """recfw's own identity: a user that may only assume roles; STS is the moto server.
    No AWS config files, no metadata service (botocore's chain stays on the env vars)."""
    key, secret = s3_endpoint.create_user(policy=_ALLOW_ASSUME)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ROLE_ARN", raising=False)
    monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv(STS_ENDPOINT_ENV, s3_endpoint.endpoint_url)
    return key


def _role(s3, *, allow_s3: bool = True) -> str:
    iam = s3.client("iam")
    name = f"recfw-role-{uuid.uuid4().hex[:8]}"
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(_TRUST))["Role"]["Arn"]
    if allow_s3:
        iam.put_role_policy(RoleName=name, PolicyName="s3", PolicyDocument=json.dumps(_ALLOW_S3))
    return arn


def _destination(s3, bucket: str, role_arn: str) -> Destination:
    return Destination(
        provider="s3",
        bucket=f"{bucket}/meetings",
        region=s3.region,
        endpoint_url=s3.endpoint_url,
        authentication_type="roleBased",
        oidc_role_arn=role_arn,
    )


def _key() -> str:
    return f"room-{uuid.uuid4().hex[:6]}-2026-11-30T17:00:00Z.mkv"


def test_a_recording_arrives_with_the_roles_temporary_credentials(
    s3_endpoint, role_env, tmp_path, builtin_plugins
):
    bucket = s3_endpoint.create_bucket()
    arn = _role(s3_endpoint)
    spool = tmp_path / "spool.mkv"
    digest = make_file(spool, 300_000)
    key = _key()
    stored = store_recording(spool, key, _destination(s3_endpoint, bucket, arn), builtin_plugins)
    assert stored.location == f"s3://{bucket}/meetings/{key}"
    assert not spool.exists()
    body = s3_endpoint.client().get_object(Bucket=bucket, Key=f"meetings/{key}")["Body"].read()
    assert sha256(body) == digest


def test_the_filesystem_signs_as_the_assumed_role(s3_endpoint, role_env):
    arn = _role(s3_endpoint)
    bucket = s3_endpoint.create_bucket()
    fs = S3Sink().filesystem(_destination(s3_endpoint, bucket, arn))
    creds = sync(get_loop(), fs.session.get_credentials)
    frozen = sync(get_loop(), creds.get_frozen_credentials)
    assert frozen.access_key != role_env  # not recfw's own key
    assert frozen.token
    sts = s3_endpoint.client("sts", key_id=frozen.access_key, secret=frozen.secret_key)
    sts.meta.events.register(
        "before-sign.sts.*",
        lambda request, **_: request.headers.__setitem__("X-Amz-Security-Token", frozen.token),
    )
    identity = sts.get_caller_identity()
    role_name = arn.rsplit("/", 1)[1]
    assert f":assumed-role/{role_name}/recfw-" in identity["Arn"]


def test_credentials_are_assumed_again_before_they_expire(s3_endpoint, role_env, tmp_path):
    """A long upload: when the temporary credentials near their expiry, botocore assumes the
    role again (a real second AssumeRole call) and the upload goes on with the new ones."""
    arn = _role(s3_endpoint)
    bucket = s3_endpoint.create_bucket()
    fs = S3Sink().filesystem(_destination(s3_endpoint, bucket, arn))
    creds = sync(get_loop(), fs.session.get_credentials)
    assumer = creds._refresh_using.__self__
    first = sync(get_loop(), creds.get_frozen_credentials)
    assert assumer.calls == 1
    path = tmp_path / "late.bin"
    make_file(path, 1000)
    fs.put_file(str(path), f"{bucket}/early.bin")
    assert assumer.calls == 1  # fresh credentials are reused
    creds._expiry_time = datetime.now(UTC) + timedelta(minutes=5)  # inside the mandatory window
    fs.put_file(str(path), f"{bucket}/late.bin")  # the S3 client's signer refreshes them
    assert assumer.calls == 2
    second = sync(get_loop(), creds.get_frozen_credentials)
    assert second.access_key != first.access_key
    assert s3_endpoint.keys(bucket) == ["early.bin", "late.bin"]


def test_a_role_without_s3_permission_is_denied_and_named(
    s3_endpoint, role_env, tmp_path, builtin_plugins
):
    """moto evaluates the role's own policy: a role allowed nothing cannot upload, so the
    upload above really used the role (not recfw's user, which may not use S3 either)."""
    bucket = s3_endpoint.create_bucket()
    arn = _role(s3_endpoint, allow_s3=False)
    spool = tmp_path / "spool.mkv"
    make_file(spool, 1000)
    with pytest.raises(StorageError) as err:
        store_recording(spool, _key(), _destination(s3_endpoint, bucket, arn), builtin_plugins)
    message = str(err.value)
    assert "AccessDenied" in message and arn in message
    assert "\n" not in message
    assert spool.exists()
    assert s3_endpoint.keys(bucket) == []


def test_recfw_may_not_assume_the_role(s3_endpoint, role_env, monkeypatch, tmp_path):
    """recfw's identity lacks sts:AssumeRole: STS says AccessDenied, the role is named, the
    file is kept and no secret is in the message."""
    key, secret = s3_endpoint.create_user(allow_s3=True)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    bucket = s3_endpoint.create_bucket()
    arn = _role(s3_endpoint)
    spool = tmp_path / "spool.mkv"
    make_file(spool, 1000)
    with pytest.raises(StorageError) as err:
        S3Sink().store(spool, _key(), _destination(s3_endpoint, bucket, arn), None)
    message = str(err.value)
    assert message.startswith("STS refused to let recfw assume role " + arn)
    assert "AccessDenied" in message
    assert secret not in message
    assert spool.exists()
    assert s3_endpoint.keys(bucket) == []


def test_a_role_that_does_not_exist_is_not_assumed(
    s3_endpoint, role_env, tmp_path, builtin_plugins
):
    """moto (unlike AWS) hands out credentials for a role that does not exist; S3 then fails
    on them. Either way the upload fails, the error names the role and the file is kept."""
    bucket = s3_endpoint.create_bucket()
    arn = "arn:aws:iam::123456789012:role/recfw-no-such-role"
    spool = tmp_path / "spool.mkv"
    make_file(spool, 1000)
    with pytest.raises(StorageError) as err:
        store_recording(spool, _key(), _destination(s3_endpoint, bucket, arn), builtin_plugins)
    assert arn in str(err.value)
    assert "\n" not in str(err.value)
    assert spool.exists()
    assert s3_endpoint.keys(bucket) == []


@pytest.mark.parametrize(
    "endpoint, reason",
    [("http://169.254.169.254/", "metadata"), ("http://127.0.0.9:{port}/", "loopback")],
)
def test_sts_goes_only_where_netguard_allows(
    s3_endpoint, role_env, monkeypatch, tmp_path, endpoint, reason
):
    monkeypatch.setenv(STS_ENDPOINT_ENV, endpoint.format(port=closed_port()))
    bucket = s3_endpoint.create_bucket()
    arn = _role(s3_endpoint)
    spool = tmp_path / "spool.mkv"
    make_file(spool, 1000)
    with pytest.raises(StorageError) as err:
        S3Sink(attempts=1).store(spool, _key(), _destination(s3_endpoint, bucket, arn), None)
    message = str(err.value)
    assert message.startswith("refusing to connect to STS at ")
    assert arn in message and reason in message
    assert spool.exists()


def test_an_unreachable_sts_is_one_clear_line(s3_endpoint, role_env, monkeypatch, tmp_path):
    from recfw import netguard

    port = closed_port()
    remove = netguard.allow(f"127.0.0.1:{port}")
    try:
        bucket = s3_endpoint.create_bucket()
        arn = _role(s3_endpoint)
        sink = S3Sink(sts_endpoint_url=f"http://127.0.0.1:{port}", attempts=1)
        spool = tmp_path / "spool.mkv"
        make_file(spool, 1000)
        with pytest.raises(StorageError) as err:
            sink.store(spool, _key(), _destination(s3_endpoint, bucket, arn), None)
    finally:
        remove()
    message = str(err.value)
    assert message.startswith(f"cannot reach STS at http://127.0.0.1:{port} to assume role {arn}")
    assert "\n" not in message
    assert spool.exists()


def test_web_identity_token_file(s3_endpoint, role_env, monkeypatch, tmp_path):
    """With a web identity token file, AssumeRoleWithWebIdentity (unsigned): recfw needs no
    AWS keys of its own. moto does not verify the token, and answers its unsigned call with
    a 500 while its authentication is on: this test runs with authentication off."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJub25lIn0.eyJzdWIiOiJyZWNmdyJ9.\n")
    monkeypatch.setenv(TOKEN_FILE_ENV, str(token))
    bucket = s3_endpoint.create_bucket()
    arn = _role(s3_endpoint)
    spool = tmp_path / "spool.mkv"
    make_file(spool, 2000)
    key = _key()
    with s3_endpoint.without_auth():
        fs = S3Sink().filesystem(_destination(s3_endpoint, bucket, arn))
        creds = sync(get_loop(), fs.session.get_credentials)
        frozen = sync(get_loop(), creds.get_frozen_credentials)
        identity = s3_endpoint.client(
            "sts", key_id=frozen.access_key, secret=frozen.secret_key
        ).get_caller_identity()
        S3Sink().store(spool, key, _destination(s3_endpoint, bucket, arn), None)
    assert f":assumed-role/{arn.rsplit('/', 1)[1]}/recfw-" in identity["Arn"]
    assert s3_endpoint.keys(bucket) == [f"meetings/{key}"]

    token.write_text("")
    with pytest.raises(StorageError, match=f"web identity token file .* is empty .*{arn}"):
        S3Sink().store(spool, _key(), _destination(s3_endpoint, bucket, arn), None)
    missing = Path(tmp_path / "missing-token")
    with pytest.raises(StorageError, match="cannot read the web identity token file"):
        S3Sink(web_identity_token_file=str(missing)).store(
            spool, _key(), _destination(s3_endpoint, bucket, arn), None
        )
    assert spool.exists()


def test_no_credentials_of_its_own_is_a_clear_error(s3_endpoint, role_env, monkeypatch, tmp_path):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    bucket = s3_endpoint.create_bucket()
    arn = _role(s3_endpoint)
    spool = tmp_path / "spool.mkv"
    make_file(spool, 1000)
    with pytest.raises(StorageError, match=f"no AWS credentials of its own to assume role {arn}"):
        S3Sink().store(spool, _key(), _destination(s3_endpoint, bucket, arn), None)
    assert spool.exists()
