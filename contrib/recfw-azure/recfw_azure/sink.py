"""The ``azure`` sink: recordings go to an Azure Blob Storage container via adlfs (fsspec).

Destination fields, in recfw's REST shape:

``bucket``
    ``container`` or ``container/sub/folder``.
``accessKeyId``
    The storage account name.
``accessKeySecret``
    The storage account key.
``endpointUrl``
    Optional blob endpoint, e.g. ``http://127.0.0.1:10000/devstoreaccount1``
    for the Azurite emulator (default: ``https://<account>.blob.core.windows.net``).

A store checks that the container exists (it is never created behind the
user's back), uploads with ``overwrite=False`` to the first free name
(``name.mkv``, ``name (2).mkv``, ...) and confirms the stored size. Every
failure is a :class:`recfw.errors.StorageError` naming the problem; the
account key never appears in a message or a log line.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from recfw.errors import FieldError, StorageError, describe
from recfw.naming import free_names, join_key
from recfw.recording import Destination
from recfw.secrets import mask_secrets
from recfw.storage import Progress, StoredObject

log = logging.getLogger(__name__)

_CONTAINER = re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]")
_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")
MAX_FREE_NAME_TRIES = 100


def container_name_errors(name: str, field: str = "bucket") -> list[FieldError]:
    """Azure's container naming rules (3-63 of a-z, 0-9, '-'; no '--'; alphanumeric ends)."""
    if _CONTAINER.fullmatch(name):
        return []
    return [
        FieldError(
            field,
            f"container name {name!r} must be 3 to 63 lowercase letters, digits or single "
            "hyphens, starting and ending with a letter or digit",
        )
    ]


def _prefix_errors(prefix: str, field: str) -> list[FieldError]:
    errors = []
    if any(s in (".", "..") for s in prefix.split("/")):
        errors.append(FieldError(field, "the sub-folder must not contain '.' or '..' segments"))
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in prefix) or "\\" in prefix:
        errors.append(
            FieldError(field, "the sub-folder must not contain control characters or '\\'")
        )
    return errors


class AzureSink:
    """Stores recordings in an Azure Blob Storage container (account name + key)."""

    name = "azure"
    needs_credentials = True
    writes_locally = False

    def __init__(self, *, connection_timeout: int = 5, read_timeout: int = 60):
        self.connection_timeout = connection_timeout
        self.read_timeout = read_timeout

    def validate(self, destination: Destination) -> list[FieldError]:
        errors = container_name_errors(destination.bucket_name)
        errors += _prefix_errors(destination.prefix, "bucket")
        if destination.access_key_id and not _ACCOUNT.fullmatch(destination.access_key_id):
            errors.append(
                FieldError(
                    "accessKeyId",
                    "must be the storage account name (3 to 24 lowercase letters and digits)",
                )
            )
        if destination.endpoint_url:
            parts = urlsplit(destination.endpoint_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                errors.append(FieldError("endpointUrl", "must be an http(s) URL"))
        return errors

    def filesystem(self, destination: Destination) -> Any:
        """An ``adlfs.AzureBlobFileSystem`` for the destination's account."""
        from adlfs import AzureBlobFileSystem

        account = destination.access_key_id or ""
        key = destination.access_key_secret.reveal() if destination.access_key_secret else ""
        common = {
            "connection_timeout": self.connection_timeout,
            "read_timeout": self.read_timeout,
            "skip_instance_cache": True,
        }
        if destination.endpoint_url:
            endpoint = destination.endpoint_url.rstrip("/")
            scheme = urlsplit(endpoint).scheme
            conn = (
                f"DefaultEndpointsProtocol={scheme};AccountName={account};AccountKey={key};"
                f"BlobEndpoint={endpoint};"
            )
            return AzureBlobFileSystem(connection_string=conn, **common)
        return AzureBlobFileSystem(account_name=account, account_key=key, **common)

    def store(
        self,
        path: Path,
        key: str,
        destination: Destination,
        progress: Progress | None,
        *,
        content_type: str | None = None,
    ) -> StoredObject:
        container = destination.bucket_name
        where = f"container {container!r} of account {destination.access_key_id!r}"
        try:
            object_key = join_key(destination.prefix, key)
        except ValueError as exc:
            raise StorageError(f"azure sink: {exc}") from None
        try:
            size = Path(path).stat().st_size
        except OSError as exc:
            raise StorageError(f"cannot read the recording {path}: {exc.strerror}") from None
        try:
            self._check_container(destination, container, where)
            fs = self.filesystem(destination)
            stored_key = self._upload(fs, path, container, object_key)
            stored = fs.info(f"{container}/{stored_key}")["size"]
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001 - the SDK's errors are many; all mean "not stored"
            message = mask_secrets(_describe(exc), destination.access_key_secret)
            raise StorageError(
                f"Azure refused or failed the upload to the {where}: {message}"
            ) from None
        if stored != size:
            raise StorageError(f"the blob {stored_key!r} has {stored} bytes, the recording {size}")
        if progress is not None:
            progress(size, size)
        return StoredObject(location=f"az://{container}/{stored_key}", size=size)

    def _check_container(self, destination: Destination, container: str, where: str) -> None:
        """Fail fast (one try, short timeouts) on a missing container, bad key, no endpoint."""
        from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
        from azure.storage.blob import ContainerClient

        account = destination.access_key_id or ""
        key = destination.access_key_secret.reveal() if destination.access_key_secret else ""
        url = (destination.endpoint_url or f"https://{account}.blob.core.windows.net").rstrip("/")
        client = ContainerClient(
            url,
            container,
            credential={"account_name": account, "account_key": key},
            retry_total=0,
            connection_timeout=self.connection_timeout,
            read_timeout=self.connection_timeout,
        )
        try:
            client.get_container_properties()
        except ResourceNotFoundError:
            raise StorageError(f"the {where} does not exist") from None
        except ClientAuthenticationError:
            raise StorageError(f"Azure rejected the account key for the {where}") from None

    @staticmethod
    def _upload(fs: Any, path: Path, container: str, object_key: str) -> str:
        for candidate in free_names(object_key, MAX_FREE_NAME_TRIES):
            try:
                fs.put_file(str(path), f"{container}/{candidate}", overwrite=False)
                return candidate
            except FileExistsError:
                continue
        raise StorageError(f"no free blob name for {object_key!r} in container {container!r}")


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "error_code", None) or getattr(exc, "reason", None)
    text = describe(exc, 300)
    if code:
        name = type(exc).__name__
        text = f"{name} ({code}){text[len(name) :] or ''}"
    return text
