"""Test connection's probe against moto S3: each problem is named (no permission per step,
endpoint refused), the secret never shown, the probe object never left behind."""

from __future__ import annotations

import socket
from dataclasses import replace

from recfw import netguard
from recfw.dashboard.configure import probe
from recfw.secrets import Secret


def _policy(bucket: str, actions: list[str]) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": actions, "Resource": [f"arn:aws:s3:::{bucket}/*"]}
        ],
    }


def test_no_permission_is_named_for_the_step_that_needs_it(builtin_plugins, s3_server, s3_bucket):
    nothing = s3_server.create_user()
    write_only = s3_server.create_user(policy=_policy(s3_bucket, ["s3:PutObject"]))
    no_delete = s3_server.create_user(policy=_policy(s3_bucket, ["s3:PutObject", "s3:GetObject"]))
    for (key_id, secret), needed, left in (
        (nothing, "s3:PutObject", False),
        (write_only, "s3:GetObject", True),
        (no_delete, "s3:DeleteObject", True),
    ):
        destination = s3_server.destination(s3_bucket, "probe", key_id=key_id, secret=secret)
        result = probe(builtin_plugins, destination)
        assert not result["ok"]
        assert "denied access" in result["message"] and needed in result["message"], result
        assert secret not in result["message"]
        assert ("is left behind" in result["message"]) == left
    everything = s3_server.destination(s3_bucket, "probe")
    assert probe(builtin_plugins, everything)["ok"]
    # only the objects of the users who may not delete are still there
    assert len(s3_server.keys(s3_bucket)) == 2


def test_endpoint_refused_is_named(builtin_plugins, s3_server, s3_bucket):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    disallow = netguard.allow(f"127.0.0.1:{port}")
    try:
        destination = replace(
            s3_server.destination(s3_bucket),
            endpoint_url=f"http://127.0.0.1:{port}",
            access_key_secret=Secret("a-secret-value"),
        )
        result = probe(builtin_plugins, destination)
    finally:
        disallow()
    assert not result["ok"]
    assert "cannot reach the S3 endpoint" in result["message"], result
    assert "a-secret-value" not in result["message"]


def test_unknown_provider_is_named(builtin_plugins, s3_server, s3_bucket):
    destination = replace(s3_server.destination(s3_bucket), provider="nope")
    result = probe(builtin_plugins, destination)
    assert not result["ok"] and "nope" in result["message"]
