"""``[workers]``: where recording jobs go (a Redis stream) and how workers admit them.

::

    [workers]
    queue = "redis://:password@redis.internal:6379/0"   # or RECFW_QUEUE_URL (better)
    capacity = 1.6            # cores this host offers recorders (default: 80% of its cores)
    admissionTimeout = 10     # seconds a job may wait for a worker, then recording.failed
    heartbeat = 1             # seconds between a worker's heartbeats
    deadAfter = 6             # seconds without a heartbeat: the worker is dead

Without ``queue`` nothing changes: ``recfw run`` starts a local ``recfw worker``
process per recording (the embedded default). The URL may hold a password: it is
a :class:`~recfw.secrets.Secret` and only ever shown through :func:`shown_queue_url`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import FieldError
from ..secrets import Secret, mask_url_credentials

QUEUE_URL_ENV = "RECFW_QUEUE_URL"
SCHEMES = ("redis", "rediss", "unix")
#: field -> (attribute, lowest, highest) for the numeric ``[workers]`` fields.
_NUMBERS = {
    "capacity": ("capacity", 0.05, 1024.0),
    "admissionTimeout": ("admission_timeout", 0.5, 3600.0),
    "heartbeat": ("heartbeat", 0.1, 60.0),
    "deadAfter": ("dead_after", 0.5, 600.0),
}
FIELDS = ("queue", *_NUMBERS)


@dataclass(frozen=True)
class WorkerSettings:
    """``[workers]`` of the config file (see the module docs)."""

    #: The Redis URL of the job queue (``None``: local recorder processes).
    queue: Secret | None = None
    #: Cores this host's worker offers (``None``: 80% of ``os.cpu_count()``).
    capacity: float | None = None
    admission_timeout: float = 10.0
    heartbeat: float = 1.0
    dead_after: float = 6.0


def shown_queue_url(url: Secret | str | None) -> str:
    """The queue URL with its password masked (``redis://:********@host:6379/0``)."""
    if url is None:
        return "(none)"
    text = url.reveal() if isinstance(url, Secret) else url
    return mask_url_credentials(text)


def queue_url_error(url: str) -> str | None:
    """What is wrong with a queue URL (never repeating its password), or ``None``."""
    if not url.strip():
        return "must not be empty (leave it out to record in local processes)"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in SCHEMES:
        return (
            f"must be a redis://, rediss:// or unix:// URL, not {parts.scheme or 'no'} scheme "
            f"({shown_queue_url(url)})"
        )
    if parts.scheme != "unix" and not parts.hostname:
        return f"has no host ({shown_queue_url(url)})"
    if parts.scheme == "unix" and not parts.path:
        return f"has no socket path ({shown_queue_url(url)})"
    database = parts.path.strip("/")
    if parts.scheme != "unix" and database and not database.isdigit():
        return f"database must be a number, not {database!r}"
    return None


def parse_workers(
    data: Any, environ: Mapping[str, str], errors: list[FieldError]
) -> WorkerSettings:
    """``[workers]`` (and ``RECFW_QUEUE_URL`` when the file sets no ``queue``)."""
    values: dict[str, Any] = {}
    if data is not None and not isinstance(data, Mapping):
        errors.append(FieldError("workers", "must be a table"))
        data = None
    for key, value in (data or {}).items():
        if key == "queue":
            if not isinstance(value, str):
                errors.append(FieldError("workers.queue", "must be a string (a redis:// URL)"))
                continue
            values["queue"] = value
        elif key in _NUMBERS:
            attribute, low, high = _NUMBERS[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                errors.append(
                    FieldError(f"workers.{key}", f"must be a number, not {type(value).__name__}")
                )
            elif not low <= value <= high:
                errors.append(
                    FieldError(f"workers.{key}", f"must be {low:g}..{high:g}, not {value}")
                )
            else:
                values[attribute] = float(value)
        else:
            errors.append(
                FieldError(f"workers.{key}", f"unknown field (known: {', '.join(FIELDS)})")
            )
    env = environ.get(QUEUE_URL_ENV)
    field = "workers.queue"
    if env and "queue" not in values:  # as everywhere: the file wins over the environment
        values["queue"], field = env, QUEUE_URL_ENV
    if "queue" in values:
        problem = queue_url_error(values["queue"])
        if problem is not None:
            errors.append(FieldError(field, problem))
            values.pop("queue")
        else:
            values["queue"] = Secret(values["queue"].strip())
    settings = WorkerSettings(**values)
    if settings.dead_after <= settings.heartbeat:
        errors.append(
            FieldError(
                "workers.deadAfter",
                f"must be longer than workers.heartbeat ({settings.heartbeat:g} s), "
                f"not {settings.dead_after:g}",
            )
        )
    return settings


__all__ = [
    "QUEUE_URL_ENV",
    "WorkerSettings",
    "parse_workers",
    "queue_url_error",
    "shown_queue_url",
]
