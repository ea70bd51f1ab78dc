"""The ``fsspec`` sink: any fsspec URL is a destination.

``destination.bucket`` is a URL such as ``memory://recordings``,
``file:///srv/recordings`` or ``gcs://bucket/sub/folder``; the recording is
stored at ``<url>/<file name>``. The filesystem's own credentials apply (for
example gcsfs' default credentials): this sink does not pass
``accessKeyId``/``accessKeySecret`` on, use the ``s3`` sink for S3.

A URL with a host (``ftp://host/...``, ``sftp://``, ``http://``, ``webdav://``)
must point at a public address or one the operator allow-listed
(:mod:`recfw.netguard`); it is checked when validated and again just before
storing. (Unlike the ``s3`` sink, whose every connection is checked, the
filesystem opens its own connections: a name that changes its address between
that last check and the connection is not caught here.)

As with the other sinks: an existing file is never replaced (the recording
becomes ``name (2).ext``), and the stored size is read back and must match.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from recfw import netguard
from recfw.errors import FieldError, StorageError, describe
from recfw.naming import free_names, join_key
from recfw.recording import Destination
from recfw.secrets import mask_secrets, strip_url_credentials
from recfw.storage import Progress, StoredObject

from ._common import (
    ProgressCallback,
    has_control_chars,
    local_size,
    prefix_errors,
)

log = logging.getLogger(__name__)


def split_url(url: str) -> tuple[str, str]:
    """``("gcs", "bucket/sub")`` for ``gcs://bucket/sub``; raise ``ValueError`` if not a URL."""
    protocol, sep, rest = url.partition("://")
    if not sep or not protocol:
        # Not a URL, so its credentials cannot be told apart: quoted only without any.
        shown = "the value" if "@" in url else repr(url)
        raise ValueError(f"{shown} is not an fsspec URL (expected protocol://path)")
    return protocol, rest


def _hide(text: str, url: str) -> str:
    """``text`` without URL credentials, nor ``url``'s password quoted on its own."""
    full = url.partition("://")[2]
    userinfo = full[: len(full) - len(strip_url_credentials(url).partition("://")[2])]
    password = userinfo[:-1].partition(":")[2]  # userinfo ends with its "@"
    return mask_secrets(text, password)


class FsspecSink:
    """Stores recordings at any fsspec URL (``memory://``, ``file://``, ``gcs://``, ...)."""

    name = "fsspec"
    needs_credentials = False
    writes_locally = True  # any fsspec URL, file:// included

    def validate(self, destination: Destination) -> list[FieldError]:
        import fsspec

        url = destination.bucket or ""
        field = "bucket"
        try:
            protocol, rest = split_url(url)
        except ValueError as exc:
            return [FieldError(field, str(exc))]
        errors = []
        known = set(fsspec.available_protocols())
        if protocol not in known:
            errors.append(FieldError(field, f"unknown fsspec protocol {protocol!r}"))
        if has_control_chars(url):
            errors.append(FieldError(field, "must not contain control characters"))
        errors += [e for e in prefix_errors(rest, field) if "control" not in e.message]
        if not errors:  # SSRF: a URL with a host must point somewhere public (or allowed)
            errors += [
                FieldError(field, _hide(e.message, url)) for e in netguard.url_errors(url, field)
            ]
        return errors

    def store(
        self,
        path: Path,
        key: str,
        destination: Destination,
        progress: Progress | None,
        *,
        content_type: str | None = None,
    ) -> StoredObject:
        errors = self.validate(destination)
        if errors:
            raise StorageError("; ".join(str(e) for e in errors))
        url = (destination.bucket or "").rstrip("/")
        shown = strip_url_credentials(url)  # what errors, logs and the location show
        try:
            join_key("", key)
        except ValueError as exc:
            raise StorageError(f"fsspec sink: {exc}") from None
        size = local_size(path)
        if "://" in url:
            try:
                netguard.check_url(url)
            except netguard.DestinationRefused as exc:
                raise StorageError(
                    f"refusing to store at {shown}: {_hide(exc.reason, url)}"
                ) from None
            except (OSError, ValueError):
                pass  # no host, or not resolvable now: the filesystem reports it
        try:
            from fsspec.core import url_to_fs

            fs, root = url_to_fs(url)
            fs.makedirs(root, exist_ok=True)
            target = self._free_path(fs, root, key, shown)
            fs.put_file(str(path), target, callback=ProgressCallback(progress, size))
            stored = int(fs.info(target)["size"])
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a clear StorageError
            detail = _hide(describe(exc), url)
            raise StorageError(f"cannot store the recording at {shown}: {detail}") from None
        # As the user wrote the URL, without its user:password.
        location = f"{shown}/{target.rsplit('/', 1)[-1]}"
        if stored != size:
            raise StorageError(
                f"{location} has {stored} bytes after the upload, the recording {size}"
            )
        if progress is not None:
            progress(size, size)
        return StoredObject(location=location, size=size)

    @staticmethod
    def _free_path(fs: Any, root: str, key: str, shown: str) -> str:
        """The first name of :func:`candidate_names` not taken under ``root``.

        ``shown`` is the destination URL as logs and errors may show it.
        """
        for candidate in free_names(key):
            target = f"{root.rstrip('/')}/{candidate}"
            if not fs.exists(target):
                if candidate != key:
                    log.warning("%s/%s exists; storing as %s", shown, key, candidate)
                return target
        raise StorageError(f"no free file name for {key} at {shown}")
