"""The ``s3`` sink: recordings go to an S3 (or S3-compatible) bucket through s3fs.

``destination.bucket`` is ``bucket-name`` or ``bucket-name/sub/folder``; the
object key is ``sub/folder/<file name>``. Credentials come from the
destination (``accessKeyId`` / ``accessKeySecret``), or, for a role-based
destination (``authenticationType: roleBased``), from STS: the role
``oidcRoleArn`` is assumed and its refreshable temporary credentials are used
(:mod:`recfw.plugins.sinks.s3_role`). ``region`` and ``endpointUrl`` are
optional (an endpoint URL is how S3-compatible stores and the tests' moto
server are reached).

What :meth:`S3Sink.store` does, in order:

1. A cheap listing of the key's name in the bucket. It fails fast, before any
   byte is sent, on wrong credentials, a missing bucket or an unreachable
   endpoint; and it finds a free name (``name (2).mkv``) so an existing object
   is never replaced. A key allowed to upload but not to list (a write-only
   policy) skips this step.
2. The upload: one PUT for small files, a multipart upload in ``part_size``
   parts (default 8 MiB) for large ones, reporting ``progress(done, total)``.
3. A HEAD of the object: its size must be the local file's size. (With a
   write-only key the HEAD is forbidden; the successful upload response is
   then the confirmation, and a warning says so.)

Only allowed hosts are contacted (:mod:`recfw.netguard`): settings validation
checks ``endpointUrl``, and every connection is checked again when it is
opened (the aiohttp resolver and socket factory aiobotocore uses, which
connect to exactly the address that was checked), so a name that resolves to
an internal address later is refused too.

Every request has bounded connect and read timeouts and a bounded number of
attempts (:class:`recfw.storage.TransferOptions`, ``[storage]`` in the config
file); a failed attempt is logged at WARNING, so a silent endpoint shows up
within seconds, not minutes.

Unfinished multipart uploads are not left behind: a failed upload is
aborted; before each upload, unfinished multipart uploads of the same key (an
earlier failed attempt of this recording) and those of recfw recordings
(``name-YYYY-MM-DDTHH:MM:SSZ.ext``) under the same sub-folder older than
``staleUploadsAfter`` are aborted. Listing or aborting them is best-effort:
a key without the permission still uploads.

Every failure is a :class:`recfw.errors.StorageError` whose message names the
problem (``S3 rejected the credentials (InvalidAccessKeyId) for bucket 'x'``);
the secret is never part of a message or a log line.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from recfw import netguard
from recfw.errors import FieldError, StorageError, describe
from recfw.naming import MAX_FREE_NAMES, free_names, join_key
from recfw.recording import Destination
from recfw.secrets import Secret, mask_key_id, mask_secrets, safe_url, strip_url_credentials
from recfw.storage import Progress, StoredObject, TransferOptions, transfer_options

from ._common import ProgressCallback, local_size, prefix_errors
from .s3_errors import _code, _is_unreachable, _server_message, _unreachable_reason
from .s3_role import DEFAULT_DURATION, RoleAssumer, RoleOptions, find_role_error

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: S3's smallest part (all but the last); also recfw's smallest allowed part size.
MIN_PART_SIZE = 5 * MiB
MAX_PARTS = 10_000
#: Longest prefix (sub-folder) in UTF-8 bytes: S3 keys may be 1024 bytes, names take up to ~160.
MAX_PREFIX_BYTES = 800

CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
    "AuthorizationHeaderMalformed",
    "UnrecognizedClientException",
    "NoCredentialsError",
}
DENIED_CODES = {"AccessDenied", "403", "AllAccessDisabled", "AccountProblem"}
MISSING_BUCKET_CODES = {"NoSuchBucket"}

#: A recfw recording's file name (``room-2026-11-23T19:40:05Z.mkv``, ``... (2).mkv``).
RECORDING_NAME = re.compile(
    r"[^/]+-(?P<start>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)(?:-\d+)?(?: \(\d+\))?"
    r"\.[A-Za-z0-9]{1,10}"
)

_BUCKET_CHARS = re.compile(r"[a-z0-9.-]+")
_REGION = re.compile(r"[a-z0-9-]{2,32}")


def bucket_name_errors(name: str, field: str = "bucket") -> list[FieldError]:
    """The S3 bucket naming rules, each broken rule as one :class:`FieldError`."""
    problems: list[str] = []
    if not 3 <= len(name) <= 63:
        problems.append(f"bucket name {name!r} must be 3 to 63 characters long")
    if not _BUCKET_CHARS.fullmatch(name or "-"):
        problems.append(
            f"bucket name {name!r} may contain only lowercase letters, digits, '-' and '.'"
        )
    if name and not (name[0].isascii() and name[0].isalnum()):
        problems.append(f"bucket name {name!r} must start with a letter or digit")
    if name and not (name[-1].isascii() and name[-1].isalnum()):
        problems.append(f"bucket name {name!r} must end with a letter or digit")
    if ".." in name:
        problems.append(f"bucket name {name!r} must not contain '..'")
    if ".-" in name or "-." in name:
        problems.append(f"bucket name {name!r} must not contain '.-' or '-.'")
    try:
        ipaddress.IPv4Address(name)
        problems.append(f"bucket name {name!r} must not look like an IP address")
    except ValueError:
        pass
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(prefix):
            problems.append(f"bucket name {name!r} must not start with {prefix!r}")
    for suffix in ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"):
        if name.endswith(suffix):
            problems.append(f"bucket name {name!r} must not end with {suffix!r}")
    return [FieldError(field, p) for p in problems]


class S3Sink:
    """Stores recordings in an S3 bucket via s3fs (multipart for large files).

    ``connect_timeout``, ``read_timeout``, ``attempts`` and
    ``stale_uploads_after`` left at ``None`` follow the process'
    :func:`recfw.storage.transfer_options` (the config file's ``[storage]``).
    ``sts_endpoint_url`` and ``web_identity_token_file`` (role-based
    destinations) default to ``AWS_ENDPOINT_URL_STS`` and
    ``AWS_WEB_IDENTITY_TOKEN_FILE``; ``role_session_seconds`` is how long
    assumed-role credentials are asked for (they refresh before expiring).
    """

    name = "s3"
    needs_credentials = True
    writes_locally = False

    def __init__(
        self,
        *,
        part_size: int = 8 * MiB,
        max_concurrency: int = 4,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        attempts: int | None = None,
        stale_uploads_after: float | None = None,
        sts_endpoint_url: str | None = None,
        web_identity_token_file: str | None = None,
        role_session_seconds: int = DEFAULT_DURATION,
    ):
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        self.part_size = part_size
        self.max_concurrency = max_concurrency
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.attempts = attempts
        self.stale_uploads_after = stale_uploads_after
        self.role_options = RoleOptions(
            sts_endpoint_url=sts_endpoint_url,
            web_identity_token_file=web_identity_token_file,
            duration=role_session_seconds,
        )

    def options(self) -> TransferOptions:
        """The timeouts and attempts in force: this sink's own, else the process' ones."""
        base = transfer_options()
        own: dict[str, Any] = {
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "attempts": self.attempts,
            "stale_uploads_after": self.stale_uploads_after,
        }
        return replace(base, **{k: v for k, v in own.items() if v is not None})

    # --- validation ---------------------------------------------------------

    def validate(self, destination: Destination) -> list[FieldError]:
        errors = bucket_name_errors(destination.bucket_name)
        prefix = destination.prefix
        errors += prefix_errors(prefix, "bucket")
        if len(prefix.encode("utf-8")) > MAX_PREFIX_BYTES:
            errors.append(
                FieldError("bucket", f"the sub-folder is longer than {MAX_PREFIX_BYTES} bytes")
            )
        if destination.endpoint_url is not None:
            url = urlsplit(destination.endpoint_url)
            if strip_url_credentials(destination.endpoint_url) != destination.endpoint_url:
                # Also a password holding "/" (http://KEY:SE/CRET@host/), which urlsplit
                # reads as host KEY, port SE: never quoted, never sent as a host name.
                errors.append(FieldError("endpointUrl", "must not contain credentials"))
            elif url.scheme not in ("http", "https") or not url.hostname:
                errors.append(
                    FieldError(
                        "endpointUrl",
                        f"must be an http:// or https:// URL, not {destination.endpoint_url!r}",
                    )
                )
            elif url.username or url.password:
                errors.append(FieldError("endpointUrl", "must not contain credentials"))
        if destination.region is not None and not _REGION.fullmatch(destination.region):
            errors.append(FieldError("region", f"not an AWS region name: {destination.region!r}"))
        return errors

    # --- storing --------------------------------------------------------------

    def filesystem(self, destination: Destination, *, attempts: int | None = None) -> Any:
        """A fresh ``S3FileSystem`` for ``destination`` (the secret is revealed only here).

        Its connections go through :mod:`recfw.netguard`; its requests have
        the timeouts and attempts of :meth:`options` (``attempts`` overrides).
        A role-based destination's role is assumed here (:mod:`.s3_role`; a
        failure is a :class:`~.s3_role.RoleError`); its credentials refresh
        themselves before they expire.
        """
        import s3fs

        opts = self.options()
        tries = attempts or opts.attempts
        client_kwargs: dict[str, Any] = {}
        if destination.region:
            client_kwargs["region_name"] = destination.region
        credentials: dict[str, Any]
        if destination.role_based:
            credentials = {
                "session": self._role_session(destination, replace(opts, attempts=tries))
            }
        else:
            secret = destination.access_key_secret
            credentials = {
                "key": destination.access_key_id,
                "secret": secret.reveal() if isinstance(secret, Secret) else secret,
            }
        fs = s3fs.S3FileSystem(
            **credentials,
            endpoint_url=destination.endpoint_url,
            client_kwargs=client_kwargs,
            config_kwargs={
                "connect_timeout": opts.connect_timeout,
                "read_timeout": opts.read_timeout,
                "retries": {"total_max_attempts": tries, "mode": "standard"},
                "connector_args": netguard.aiohttp_connector_args(),
            },
            max_concurrency=self.max_concurrency,
            skip_instance_cache=True,
            use_listings_cache=False,
        )
        # botocore retries each request (``tries``); s3fs' own loop on top would
        # multiply the attempts (and the wait on a silent endpoint).
        fs.retries = 1
        fs.connect()
        fs.s3.meta.events.register("needs-retry.s3", _RetryLogger(tries))
        return fs

    def _role_session(self, destination: Destination, opts: TransferOptions) -> Any:
        """An aiobotocore session holding the role's refreshable temporary credentials."""
        from aiobotocore.session import AioSession
        from fsspec.asyn import get_loop

        if not destination.oidc_role_arn:
            raise StorageError("role-based authentication needs oidcRoleArn (the role to assume)")
        assumer = RoleAssumer(
            destination.oidc_role_arn,
            region=destination.region,
            options=self.role_options,
            transfer=opts,
        )
        session = AioSession()
        session._credentials = assumer.credentials(get_loop())
        return session

    def store(
        self,
        path: Path,
        key: str,
        destination: Destination,
        progress: Progress | None,
        *,
        content_type: str | None = None,
    ) -> StoredObject:
        bucket = destination.bucket_name
        errors = bucket_name_errors(bucket) + prefix_errors(destination.prefix, "bucket")
        if errors:
            raise StorageError("; ".join(str(e) for e in errors))
        try:
            object_key = join_key(destination.prefix, key)
        except ValueError as exc:
            raise StorageError(f"s3 sink: {exc}") from None
        size = local_size(path)
        where = _where(bucket, destination)
        chunksize = max(self.part_size, math.ceil(size / MAX_PARTS))
        multipart = size >= 2 * chunksize  # s3fs' own rule: one PUT below that
        uploading = False
        try:
            fs = self.filesystem(destination)
            object_key = self._free_key(fs, bucket, object_key)
            self._abort_unfinished(fs, bucket, destination.prefix, object_key)
            log.info("uploading %s (%d bytes) to s3://%s/%s", path, size, bucket, object_key)
            uploading = True
            extra = {"ContentType": content_type} if content_type else {}
            fs.put_file(
                str(path),
                f"{bucket}/{object_key}",
                callback=ProgressCallback(progress, size),
                chunksize=chunksize,
                **extra,
            )
            uploading = False
            stored = self._confirmed_size(fs, bucket, object_key, size)
        except StorageError:
            raise
        except BaseException as exc:
            if uploading and multipart:
                self._abort_after_failure(destination, bucket, object_key)
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt, cancellation: the caller keeps the file
            message = explain(
                exc, where=where, key_id=destination.access_key_id, role_arn=_role(destination)
            )
            if _is_unreachable(exc) and netguard.find_refusal(exc) is None:
                opts = self.options()
                message += (
                    f" (connect timeout {opts.connect_timeout:g} s, read timeout "
                    f"{opts.read_timeout:g} s, {opts.attempts} attempt(s) per request; "
                    "[storage] in the config file sets them)"
                )
            raise StorageError(_scrub(message, destination)) from None
        if stored != size:
            raise StorageError(
                f"the object s3://{bucket}/{object_key} has {stored} bytes after the upload, "
                f"the recording {size} ({where})"
            )
        if progress is not None:
            progress(size, size)
        return StoredObject(location=f"s3://{bucket}/{object_key}", size=size)

    # --- optional capabilities (recfw.storage.LinkingSink, DeletingSink) ---------------

    def _object(self, location: str, destination: Destination) -> tuple[str, str]:
        """``(bucket, key)`` of ``location`` (``s3://bucket/key``), which must be inside the
        destination's bucket and sub-folder."""
        bucket, _, key = location.removeprefix("s3://").partition("/")
        prefix = destination.prefix
        inside = (
            location.startswith("s3://")
            and bucket == destination.bucket_name
            and key
            and (not prefix or key.startswith(prefix + "/"))
            and ".." not in key.split("/")
        )
        if not inside:
            raise StorageError(f"{location} is not inside the destination {destination.bucket!r}")
        return bucket, key

    def access_link(self, location: str, destination: Destination, valid_for: int) -> str:
        """A presigned GET URL of the object, valid for ``valid_for`` seconds (no request is
        made: the URL is signed with the destination's credentials)."""
        bucket, key = self._object(location, destination)
        try:
            fs = self.filesystem(destination)
            return fs.sign(f"{bucket}/{key}", expiration=int(valid_for))
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            message = explain(
                exc,
                where=_where(bucket, destination),
                key_id=destination.access_key_id,
                role_arn=_role(destination),
            )
            raise StorageError(_scrub(message, destination)) from None

    def delete(self, location: str, destination: Destination) -> bool:
        """Delete the object; ``False`` if it was already gone."""
        bucket, key = self._object(location, destination)
        where = _where(bucket, destination)
        try:
            fs = self.filesystem(destination)
            try:
                fs.call_s3("head_object", Bucket=bucket, Key=key)
                existed = True
            except Exception as exc:  # noqa: BLE001
                code = _code(exc)
                if code in ("404", "NoSuchKey", "NotFound") or isinstance(exc, FileNotFoundError):
                    existed = False
                elif code in DENIED_CODES:
                    existed = True  # may delete without reading: assume it was there
                else:
                    raise
            fs.call_s3("delete_object", Bucket=bucket, Key=key)
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            message = explain(
                exc, where=where, key_id=destination.access_key_id, role_arn=_role(destination)
            )
            raise StorageError(_scrub(message, destination)) from None
        if existed:
            log.info("deleted s3://%s/%s", bucket, key)
        return existed

    def probe(self, destination: Destination) -> str:
        """Write, read back and delete a small probe object (recfw.storage.ProbingSink)."""
        bucket = destination.bucket_name
        errors = bucket_name_errors(bucket) + prefix_errors(destination.prefix, "bucket")
        if errors:
            raise StorageError("; ".join(str(e) for e in errors))
        key = join_key(destination.prefix, f".recfw-probe-{uuid.uuid4().hex}")
        body = f"recfw connection test {uuid.uuid4()}".encode()
        where = _where(bucket, destination)
        step, permission = "write a test object to", "s3:PutObject"
        fs: Any = None
        written = False
        try:
            fs = self.filesystem(destination, attempts=1)
            fs.call_s3("put_object", Bucket=bucket, Key=key, Body=body)
            written = True
            step, permission = "read the test object back from", "s3:GetObject"
            if fs.cat_file(f"{bucket}/{key}") != body:
                raise StorageError("the object read back differs from the one written")
            step, permission = "delete the test object from", "s3:DeleteObject"
            fs.call_s3("delete_object", Bucket=bucket, Key=key)
            return f"s3://{bucket}/{key}"
        except Exception as exc:  # noqa: BLE001
            code = _code(exc)
            if isinstance(exc, StorageError):
                message = str(exc)
            elif code in DENIED_CODES:
                message = (
                    f"S3 denied access ({code}) to {where} for access key id "
                    f"{mask_key_id(destination.access_key_id) or 'none'}: the key needs "
                    f"{permission} permission"
                )
            else:
                message = explain(
                    exc, where=where, key_id=destination.access_key_id, role_arn=_role(destination)
                )
            if written and not _removed(fs, bucket, key):
                message += f" (the test object s3://{bucket}/{key} is left behind: delete it)"
            raise StorageError(
                _scrub(f"could not {step} {where}: {message}", destination)
            ) from None

    def _free_key(self, fs: Any, bucket: str, object_key: str) -> str:
        """``object_key`` or the first ``name (n).ext`` not in the bucket yet."""
        stem = object_key.rsplit(".", 1)[0] if "." in object_key.rsplit("/", 1)[-1] else object_key
        try:
            listing = fs.call_s3(
                "list_objects_v2", Bucket=bucket, Prefix=stem, MaxKeys=MAX_FREE_NAMES + 1
            )
        except Exception as exc:
            if _code(exc) in ("AccessDenied",):
                log.info(
                    "no permission to list bucket %r; not checking for an existing object", bucket
                )
                return object_key
            raise
        taken = {item["Key"] for item in listing.get("Contents", [])}
        for candidate in free_names(object_key):
            if candidate not in taken:
                if candidate != object_key:
                    log.warning("s3://%s/%s exists; storing as %s", bucket, object_key, candidate)
                return candidate
        raise StorageError(f"no free object name for {object_key} in bucket {bucket!r}")

    # --- unfinished multipart uploads -----------------------------------------

    def _abort_unfinished(self, fs: Any, bucket: str, prefix: str, object_key: str) -> None:
        """Abort multipart uploads left by earlier attempts: those of ``object_key`` (this
        recording; the caller holds its spool lock) and stale ones of recfw recordings
        under ``prefix``. Best-effort: a missing permission is logged, not raised."""
        folder = f"{prefix}/" if prefix else ""
        stale_after = self.options().stale_uploads_after
        now = datetime.now(UTC)
        try:
            uploads = _list_uploads(fs, bucket, folder)
        except Exception as exc:  # noqa: BLE001 - cleaning up must never stop an upload
            if _is_unreachable(exc):
                raise
            log.info("cannot list unfinished uploads in bucket %r: %s", bucket, _code(exc) or exc)
            return
        for upload in uploads:
            key = upload.get("Key", "")
            name = key[len(folder) :]
            if key == object_key:
                why = "an earlier failed attempt of this recording"
            else:
                age = _upload_age(name, upload.get("Initiated"), now)
                if age is None or age < stale_after:
                    continue
                why = f"a recfw recording's upload abandoned {age / 3600:.1f} h ago"
            _abort(fs, bucket, key, upload["UploadId"], why)

    def _abort_after_failure(self, destination: Destination, bucket: str, object_key: str) -> None:
        """After a failed upload: abort what is left of it (one quick try per request)."""
        try:
            fs = self.filesystem(destination, attempts=1)
            for upload in _list_uploads(fs, bucket, object_key):
                if upload.get("Key") == object_key:
                    _abort(fs, bucket, object_key, upload["UploadId"], "the upload failed")
        except Exception as exc:  # noqa: BLE001
            log.warning(
                "could not abort the failed upload of s3://%s/%s (%s); the next upload to "
                "this bucket folder aborts it",
                bucket,
                object_key,
                _code(exc) or type(exc).__name__,
            )

    def _confirmed_size(self, fs: Any, bucket: str, object_key: str, size: int) -> int:
        try:
            head = fs.call_s3("head_object", Bucket=bucket, Key=object_key)
        except Exception as exc:
            if _code(exc) in DENIED_CODES:
                log.warning(
                    "no permission to read back s3://%s/%s; the successful upload response "
                    "is the only confirmation",
                    bucket,
                    object_key,
                )
                return size
            raise
        return int(head["ContentLength"])


def _removed(fs: Any, bucket: str, key: str) -> bool:
    """Best effort: delete a probe object after a failed step (``False`` if it stays)."""
    try:
        fs.call_s3("delete_object", Bucket=bucket, Key=key)
        return True
    except Exception:  # noqa: BLE001 - the first error is the one to report
        return False


def _upload_age(name: str, initiated: Any, now: datetime) -> float | None:
    """Seconds a multipart upload of recording file ``name`` is at least old, or ``None``
    when ``name`` is not a recfw recording's. An upload cannot have started before its
    recording did (the time in the name), whatever ``Initiated`` says (some S3-compatible
    stores answer a fixed date)."""
    match = RECORDING_NAME.fullmatch(name) if "/" not in name else None
    if match is None:
        return None
    started = datetime.strptime(match["start"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if isinstance(initiated, datetime):
        started = max(started, initiated.astimezone(UTC))
    return (now - started).total_seconds()


def _list_uploads(fs: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Every unfinished multipart upload in ``bucket`` whose key starts with ``prefix``."""
    out: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    for _ in range(100):  # at most 100 pages of 1000
        page = fs.call_s3("list_multipart_uploads", **kwargs)
        out += page.get("Uploads", [])
        if not page.get("IsTruncated"):
            break
        kwargs["KeyMarker"] = page.get("NextKeyMarker", "")
        kwargs["UploadIdMarker"] = page.get("NextUploadIdMarker", "")
    return out


def _abort(fs: Any, bucket: str, key: str, upload_id: str, why: str) -> None:
    try:
        fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as exc:  # noqa: BLE001
        if _code(exc) == "NoSuchUpload":
            return
        log.warning("could not abort the unfinished upload of s3://%s/%s: %s", bucket, key, exc)
        return
    log.warning("aborted an unfinished multipart upload of s3://%s/%s (%s)", bucket, key, why)


class _RetryLogger:
    """A botocore ``needs-retry`` handler that only logs failed attempts (never decides)."""

    def __init__(self, attempts: int):
        self.attempts = attempts

    def __call__(
        self,
        attempts: int = 0,
        caught_exception: Any = None,
        response: Any = None,
        operation: Any = None,
        **_: Any,
    ) -> None:
        if attempts >= self.attempts:
            return None
        what = getattr(operation, "name", "request")
        if caught_exception is not None:
            refused = netguard.find_refusal(caught_exception)
            reason = refused.reason if refused else _unreachable_reason(caught_exception)
        elif response is not None and response[0].status_code >= 500:
            reason = f"HTTP {response[0].status_code}"
        else:
            return None
        log.warning(
            "S3 %s attempt %d of %d failed (%s); trying again",
            what,
            attempts,
            self.attempts,
            reason,
        )
        return None


# --- errors -------------------------------------------------------------------


def _where(bucket: str, destination: Destination) -> str:
    where = f"bucket {bucket!r}"
    if destination.endpoint_url:
        where += f" at {safe_url(destination.endpoint_url)}"
    elif destination.region:
        where += f" in {destination.region}"
    return where


def _role(destination: Destination) -> str | None:
    """The IAM role a role-based destination's uploads use, else ``None``."""
    return destination.oidc_role_arn if destination.role_based else None


def explain(
    exc: BaseException, *, where: str, key_id: str | None, role_arn: str | None = None
) -> str:
    """A one-line message naming what went wrong with an S3 call (no traceback, no secret).

    ``role_arn`` (a role-based destination) is named instead of the access key id."""
    role_error = find_role_error(exc)
    if role_error is not None:
        return str(role_error)
    refused = netguard.find_refusal(exc)
    if refused is not None:
        return f"refusing to connect to the S3 endpoint for {where}: {refused.reason}"
    code = _code(exc)
    detail = _server_message(exc)
    masked = (
        f"none (temporary credentials of role {role_arn})"
        if role_arn
        else mask_key_id(key_id) or "none"
    )
    if code in CREDENTIAL_CODES:
        return (
            f"S3 rejected the credentials ({code}) for {where} "
            f"(access key id {masked}): {detail or 'check accessKeyId and accessKeySecret'}"
        )
    if code in MISSING_BUCKET_CODES:
        return f"the {where} does not exist (NoSuchBucket)"
    if code in DENIED_CODES:
        return (
            f"S3 denied access ({code}) to {where} for access key id {masked}: the key needs "
            "s3:PutObject permission on the bucket"
        )
    if code is not None:
        return f"S3 refused the upload to {where} ({code}): {detail or type(exc).__name__}"
    if _is_unreachable(exc):
        return f"cannot reach the S3 endpoint for {where}: {_unreachable_reason(exc)}"
    if isinstance(exc, FileNotFoundError):
        return f"the {where} does not exist or the object path is wrong: {exc}"
    if isinstance(exc, PermissionError):
        return f"S3 denied access to {where} (access key id {masked}): {exc}"
    return f"the upload to {where} failed: {describe(exc)}"


def _scrub(message: str, destination: Destination) -> str:
    """``message`` without the secret; a role-based destination's role is always named."""
    role = _role(destination)
    if role and role not in message:
        message += f" (with the temporary credentials of role {role})"
    return mask_secrets(message, destination.access_key_secret)
