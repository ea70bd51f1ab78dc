"""Role-based S3 access (``authenticationType: roleBased``): temporary credentials from STS.

A role-based destination names an IAM role (``oidcRoleArn``) and carries no
keys. The ``s3`` sink asks AWS STS for temporary credentials of that role and
uploads with them (access key id, secret and session token):

* with a web identity token file (``AWS_WEB_IDENTITY_TOKEN_FILE``, or
  :class:`RoleOptions` ``web_identity_token_file``): ``AssumeRoleWithWebIdentity``
  with the token read from the file at each call (Kubernetes/EKS rotate it);
  the call is unsigned, recfw needs no AWS keys of its own;
* otherwise ``AssumeRole``, signed with recfw's own AWS credentials from the
  usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``~/.aws``, an
  instance or container role). The customer's role trusts recfw's principal.

The role is assumed once per upload (per :meth:`S3Sink.filesystem
<recfw.plugins.sinks.s3.S3Sink.filesystem>` call), for ``duration`` seconds
(default one hour), and the credentials are *refreshable*: botocore assumes
the role again 15 minutes before they expire, so an upload longer than the
session duration goes on with fresh credentials.

The STS endpoint is the operator's choice, never the customer's: the
``sts_endpoint_url`` option, else ``AWS_ENDPOINT_URL_STS``, else AWS's regional
STS endpoint for the destination's region. (A destination's ``endpointUrl`` is
not used for STS: the request is signed with recfw's own credentials, or
carries its identity token, and neither may go to an address a customer
picked.) Every STS connection goes through :mod:`recfw.netguard` like the S3
ones, so an internal STS endpoint must be allow-listed too.

Every failure is a :class:`RoleError` (a :class:`~recfw.errors.StorageError`)
naming the role ARN and what went wrong; the recording stays in the spool.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recfw import netguard
from recfw.errors import StorageError
from recfw.secrets import safe_url
from recfw.storage import TransferOptions

from .s3_errors import _code, _is_unreachable, _server_message, _unreachable_reason

log = logging.getLogger(__name__)

#: botocore's own variable for the STS endpoint (the operator's choice).
STS_ENDPOINT_ENV = "AWS_ENDPOINT_URL_STS"
#: The standard variable naming a web identity (OIDC) token file.
TOKEN_FILE_ENV = "AWS_WEB_IDENTITY_TOKEN_FILE"
#: Seconds the temporary credentials are asked for (AWS: 900 up to the role's maximum).
DEFAULT_DURATION = 3600

_DENIED = {"AccessDenied", "AccessDeniedException"}
_BAD_ROLE = {"ValidationError", "InvalidParameterValue", "NoSuchEntity", "MalformedPolicyDocument"}
_BAD_TOKEN = {"InvalidIdentityToken", "ExpiredTokenException", "IDPRejectedClaim"}
_BAD_BASE = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "UnrecognizedClientException",
}


class RoleError(StorageError):
    """Assuming a destination's IAM role failed (the message names the role, never a secret)."""


@dataclass(frozen=True)
class RoleOptions:
    """Where and how roles are assumed: ``None`` fields follow the environment."""

    sts_endpoint_url: str | None = None
    web_identity_token_file: str | None = None
    duration: int = DEFAULT_DURATION

    def endpoint(self) -> str | None:
        """The STS endpoint URL in force (``None``: AWS's regional endpoint)."""
        return self.sts_endpoint_url or os.environ.get(STS_ENDPOINT_ENV) or None

    def token_file(self) -> str | None:
        """The web identity token file in force, if any."""
        return self.web_identity_token_file or os.environ.get(TOKEN_FILE_ENV) or None


class RoleAssumer:
    """Assumes one role for one destination; :meth:`fetch` is botocore's ``refresh_using``."""

    def __init__(
        self,
        role_arn: str,
        *,
        region: str | None,
        options: RoleOptions,
        transfer: TransferOptions,
    ):
        self.role_arn = role_arn
        self.region = region or "us-east-1"
        self.options = options
        self.transfer = transfer
        self.session_name = f"recfw-{uuid.uuid4().hex[:16]}"
        self.calls = 0

    def where(self) -> str:
        endpoint = self.options.endpoint()
        return f"STS at {safe_url(endpoint)}" if endpoint else f"AWS STS in {self.region}"

    async def fetch(self) -> dict[str, Any]:
        """Assume the role: botocore's refresh metadata (``access_key``, ``secret_key``,
        ``token``, ``expiry_time``), or :class:`RoleError`."""
        try:
            return await self._fetch()
        except RoleError:
            raise
        except Exception as exc:  # noqa: BLE001 - one clear line, never a traceback
            raise RoleError(self.explain(exc)) from None

    async def _fetch(self) -> dict[str, Any]:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import AioSession

        token_file = self.options.token_file()
        config: dict[str, Any] = {
            "connect_timeout": self.transfer.connect_timeout,
            "read_timeout": self.transfer.read_timeout,
            "retries": {"total_max_attempts": self.transfer.attempts, "mode": "standard"},
            "connector_args": netguard.aiohttp_connector_args(),
        }
        token: str | None = None
        if token_file:
            from botocore import UNSIGNED

            config["signature_version"] = UNSIGNED
            try:
                token = Path(token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise RoleError(
                    f"cannot read the web identity token file {token_file} to assume role "
                    f"{self.role_arn}: {exc.strerror or exc}"
                ) from None
            if not token:
                raise RoleError(
                    f"the web identity token file {token_file} is empty (role {self.role_arn})"
                )
        session = AioSession()
        async with session.create_client(
            "sts",
            region_name=self.region,
            endpoint_url=self.options.endpoint(),
            config=AioConfig(**config),
        ) as sts:
            self.calls += 1
            if token is not None:
                answer = await sts.assume_role_with_web_identity(
                    RoleArn=self.role_arn,
                    RoleSessionName=self.session_name,
                    WebIdentityToken=token,
                    DurationSeconds=self.options.duration,
                )
            else:
                answer = await sts.assume_role(
                    RoleArn=self.role_arn,
                    RoleSessionName=self.session_name,
                    DurationSeconds=self.options.duration,
                )
        creds = answer["Credentials"]
        log.info("assumed role %s (%s) until %s", self.role_arn, self.where(), creds["Expiration"])
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    def credentials(self, loop: Any) -> Any:
        """Refreshable credentials for an aiobotocore session on ``loop`` (fsspec's); the
        role is assumed now (a failure is a :class:`RoleError` here, before any upload)."""
        from aiobotocore.credentials import AioRefreshableCredentials
        from fsspec.asyn import sync

        metadata = sync(loop, self.fetch)

        async def build() -> Any:  # the refresh lock belongs to fsspec's loop
            return AioRefreshableCredentials.create_from_metadata(
                metadata, refresh_using=self.fetch, method="assume-role"
            )

        return sync(loop, build)

    def explain(self, exc: BaseException) -> str:
        """One line naming the role, the STS endpoint and what went wrong."""
        role, where = self.role_arn, self.where()
        refused = netguard.find_refusal(exc)
        if refused is not None:
            return f"refusing to connect to {where} to assume role {role}: {refused.reason}"
        code = _code(exc)
        detail = _server_message(exc) or type(exc).__name__
        if code in _DENIED:
            return (
                f"STS refused to let recfw assume role {role} ({code}, {where}): {detail}; the "
                "role's trust policy must allow recfw's principal (sts:AssumeRole"
                "[WithWebIdentity])"
            )
        if code in _BAD_ROLE:
            return f"STS rejected role {role} ({code}, {where}): {detail}"
        if code in _BAD_TOKEN:
            return (
                f"STS rejected recfw's web identity token for role {role} ({code}, {where}): "
                f"{detail}"
            )
        if code in _BAD_BASE:
            return (
                f"STS rejected recfw's own AWS credentials while assuming role {role} ({code}, "
                f"{where}): {detail}"
            )
        if code == "NoCredentialsError":
            return (
                f"recfw has no AWS credentials of its own to assume role {role} with: set "
                f"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or a profile or instance role), or "
                f"{TOKEN_FILE_ENV} for AssumeRoleWithWebIdentity"
            )
        if code is not None:
            return f"could not assume role {role} ({code}, {where}): {detail}"
        if _is_unreachable(exc):
            return f"cannot reach {where} to assume role {role}: {_unreachable_reason(exc)}"
        return f"could not assume role {role} ({where}): {type(exc).__name__}: {exc}"


def find_role_error(exc: BaseException | None) -> RoleError | None:
    """The :class:`RoleError` in ``exc``'s chain (a failed refresh during an upload)."""
    seen: set[int] = set()
    current = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, RoleError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


__all__ = ["RoleAssumer", "RoleError", "RoleOptions", "find_role_error"]
