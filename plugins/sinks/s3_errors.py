"""What went wrong in an S3 call: the error code, the server's message, unreachable or not.

Shared by the s3 sink (:mod:`.s3`) and its role-based credentials (:mod:`.s3_role`),
so neither imports the other.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _code(exc: BaseException) -> str | None:
    """The S3 error code (``InvalidAccessKeyId``, ``NoSuchBucket``, ``403``) in ``exc``'s chain."""
    for e in _chain(exc):
        response = getattr(e, "response", None)
        if isinstance(response, dict) and "Error" in response:
            return response["Error"].get("Code")
        if type(e).__name__ == "NoCredentialsError":
            return "NoCredentialsError"
    return None


def _server_message(exc: BaseException) -> str:
    for e in _chain(exc):
        response = getattr(e, "response", None)
        if isinstance(response, dict) and "Error" in response:
            return response["Error"].get("Message") or ""
    return ""


def _is_unreachable(exc: BaseException) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError
    from fsspec.exceptions import FSTimeoutError

    for e in _chain(exc):
        if isinstance(
            e,
            BotoConnectionError
            | HTTPClientError
            | FSTimeoutError
            | ConnectionError
            | socket.timeout
            | asyncio.TimeoutError
            | socket.gaierror,
        ):
            return True
        if type(e).__module__.startswith("aiohttp") and "Connect" in type(e).__name__:
            return True
    return False


def _unreachable_reason(exc: BaseException) -> str:
    """``connection refused`` / ``cannot resolve the host name`` / ``timed out`` / ...."""
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    for e in _chain(exc):
        if isinstance(e, socket.gaierror):
            return f"cannot resolve the host name ({e.strerror})"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, ConnectTimeoutError | TimeoutError):
            return "the connection timed out"
        if isinstance(e, ReadTimeoutError):
            return "the endpoint did not answer in time"
    for e in _chain(exc):
        if isinstance(e, OSError) and e.strerror:
            return e.strerror
    return type(exc).__name__
