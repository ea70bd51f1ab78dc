"""A real S3 endpoint on loopback for tests: moto in server mode, credentials enforced.

::

    with S3Server() as s3:
        bucket = s3.create_bucket()
        destination = s3.destination(bucket, "meetings/2026")
        ...  # store with the "s3" sink, then look with s3.client()

The server checks request signatures like AWS does: an unknown access key id
is rejected with ``InvalidAccessKeyId``, a wrong secret with
``SignatureDoesNotMatch``, a key without permissions with ``AccessDenied``.
This is done with moto's own IAM: at start an IAM user with an ``s3:*``
policy is created (:attr:`S3Server.access_key_id` /
:attr:`S3Server.secret_access_key`), then moto's authentication is switched on
(``POST /moto-api/reset-auth``). Moto keeps that switch in a process-wide
setting, so while an ``S3Server`` with ``enforce_auth=True`` runs, moto's
in-process mocks (``mock_aws``) in the same process check credentials too; the
previous setting is restored at :meth:`S3Server.stop`. Moto's state (buckets,
users) is also per process: two ``S3Server`` in one process see the same
buckets.

While it runs, its own ``host:port`` is on recfw's allow-list
(:mod:`recfw.netguard`) in this process; a config file for a ``recfw``
subprocess lists :attr:`S3Server.allowed_destination` under ``[server]
allowedDestinations``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

from ..recording import Destination
from ..secrets import Secret

log = logging.getLogger(__name__)

_ALLOW_S3 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}
#: The server's own user may also manage IAM users (for :meth:`S3Server.create_user`).
_ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


class S3Server:
    """moto's S3 (and IAM) on ``127.0.0.1`` at a free port, as a context manager."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
        enforce_auth: bool = True,
    ):
        self.host = host
        self.port = port
        self.region = region
        self.enforce_auth = enforce_auth
        self.access_key_id = "testing"
        self.secret_access_key = "testing"
        self._server: Any = None
        self._previous_auth: str | None = None
        self._disallow: Any = None

    # --- lifecycle ----------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the S3 server is not running (call start() first)")
        return f"http://{self.host}:{self.port}"

    @property
    def allowed_destination(self) -> str:
        """This server as an ``allowedDestinations`` entry (``127.0.0.1:PORT``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> S3Server:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        self._server = server
        self.port = server.get_host_and_port()[1]
        from ..netguard import allow

        self._disallow = allow(self.allowed_destination)
        if self.enforce_auth:
            # Credentials are checked process-wide in moto: switch the check off while
            # this server's own user is made (another S3Server may be enforcing it).
            try:
                self._previous_auth = self._set_auth("inf")
                self.access_key_id, self.secret_access_key = self.create_user(
                    f"recfw-test-{uuid.uuid4().hex[:8]}", policy=_ALLOW_ALL
                )
                self._set_auth("0")
            except BaseException:
                self.stop()
                raise
        log.info(
            "moto S3 server on %s (auth %s)",
            self.endpoint_url,
            "enforced" if self.enforce_auth else "off",
        )
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        if self._previous_auth is not None:
            self._set_auth(self._previous_auth)
            self._previous_auth = None
        self._server.stop()
        self._server = None
        if self._disallow is not None:
            self._disallow()
            self._disallow = None

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def without_auth(self) -> Iterator[None]:
        """Credentials unchecked inside the block (moto's setting is process-wide).

        For requests moto cannot authenticate although AWS accepts them: an
        unsigned ``AssumeRoleWithWebIdentity`` fails with a 500 in moto while
        its authentication is on (it looks for an ``Authorization`` header).
        """
        if not self.enforce_auth:
            yield
            return
        previous = self._set_auth("inf")
        try:
            yield
        finally:
            self._set_auth(previous)

    def _set_auth(self, count: str) -> str:
        import requests

        response = requests.post(
            f"{self.endpoint_url}/moto-api/reset-auth", data=count.encode(), timeout=10
        )
        response.raise_for_status()
        return response.json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]

    # --- clients and credentials ----------------------------------------------

    def client(
        self, service: str = "s3", *, key_id: str | None = None, secret: str | None = None
    ) -> Any:
        """A boto3 client for this server (the server's own credentials by default)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=key_id or self.access_key_id,
            aws_secret_access_key=secret or self.secret_access_key,
        )

    def create_user(
        self, name: str | None = None, *, allow_s3: bool = False, policy: dict | None = None
    ) -> tuple[str, str]:
        """A new IAM user's ``(access key id, secret)``.

        With ``allow_s3`` the user may do anything in S3; ``policy`` attaches an
        IAM policy document of your own; with neither, the user may do nothing.
        """
        if allow_s3 and policy is None:
            policy = _ALLOW_S3
        iam = self.client("iam")
        name = name or f"user-{uuid.uuid4().hex[:10]}"
        iam.create_user(UserName=name)
        if policy is not None:
            iam.put_user_policy(
                UserName=name, PolicyName="test-policy", PolicyDocument=json.dumps(policy)
            )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique name by default) and return its name."""
        name = name or f"recfw-test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        """Empty and delete a bucket (also aborting unfinished multipart uploads)."""
        s3 = self.client()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=name, Key=item["Key"])
        for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        s3.delete_bucket(Bucket=name)

    def keys(self, bucket: str) -> list[str]:
        """Every object key in ``bucket``, sorted."""
        s3 = self.client()
        out = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            out += [item["Key"] for item in page.get("Contents", [])]
        return sorted(out)

    def destination(
        self,
        bucket: str,
        prefix: str = "",
        *,
        file_format: str = "mkv",
        key_id: str | None = None,
        secret: str | None = None,
    ) -> Destination:
        """An ``s3`` :class:`Destination` for ``bucket/prefix`` on this server."""
        return Destination(
            provider="s3",
            bucket=f"{bucket}/{prefix.strip('/')}" if prefix.strip("/") else bucket,
            access_key_id=key_id or self.access_key_id,
            access_key_secret=Secret(secret or self.secret_access_key),
            file_format=file_format,
            region=self.region,
            endpoint_url=self.endpoint_url,
        )


__all__ = ["S3Server"]
