"""Signed, expiring download URLs for recordings kept on this machine (the ``local`` sink).

``GET /downloads/{recordingId}/{filename}?expires=<unix s>&signature=<hex>``
serves the file without an API key: the signature is an HMAC-SHA256 of the
recording id and the expiry, keyed with a secret derived from the room
server's host secret (``RECFW_HOST_SECRET``; without it, links made before a
restart stop working, as host links do). The file is found through the sink
(:class:`recfw.storage.LocalFileSink`), which refuses any path outside the
recording's own destination folder.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

DOWNLOAD_PREFIX = "/downloads"


def link_key(host_secret: str) -> bytes:
    """The download links' key, derived from the host secret (never the same key)."""
    return hmac.new(host_secret.encode(), b"recfw download links v1", hashlib.sha256).digest()


def signature(key: bytes, recording_id: str, expires: int) -> str:
    message = f"{recording_id}\n{expires}".encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def download_path(key: bytes, recording_id: str, filename: str, expires: int) -> str:
    """The path and query of a download link valid until ``expires`` (unix seconds)."""
    sig = signature(key, recording_id, expires)
    return (
        f"{DOWNLOAD_PREFIX}/{quote(recording_id, safe='')}/{quote(filename, safe='')}"
        f"?expires={expires}&signature={sig}"
    )


def verify(
    key: bytes, recording_id: str, expires_text: str | None, sig: str | None, now: float
) -> str | None:
    """Why the link is refused (``None``: it is valid)."""
    if not expires_text or not sig:
        return "the link is incomplete (expires and signature are needed)"
    try:
        expires = int(expires_text)
    except ValueError:
        return "the link is malformed"
    wanted = signature(key, recording_id, expires)
    if not hmac.compare_digest(wanted.encode(), sig.encode("utf-8", "surrogatepass")):
        return "the link's signature is wrong"
    if expires < now:
        return "the link has expired: ask the API for a new one"
    return None


__all__ = ["DOWNLOAD_PREFIX", "download_path", "link_key", "signature", "verify"]
