"""The control plane's background work in ``recfw run`` and ``recfw demo``.

:class:`ControlRuntime` opens the database, makes the ``webhook_endpoints``
table match the config file's ``[[webhooks]]`` (URLs checked by
:mod:`recfw.netguard`), and runs the webhook worker and the background uploader
while the server runs. At exit it makes a short best-effort flush of due
deliveries (``RECFW_WEBHOOK_EXIT_WAIT`` seconds, 3 by default, at most 30):
whatever is still pending waits in the database for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from ..errors import FieldError, SettingsError
from .delivery import DeliveryPolicy, WebhookWorker
from .endpoints import EndpointStore
from .events import ControlEvents
from .uploader import BackgroundUploader, UploadPolicy

if TYPE_CHECKING:
    from ..config import Config
    from ..manager import Plugins
    from .db import Database

log = logging.getLogger(__name__)

#: Seconds the process tries to deliver due webhooks before it exits.
EXIT_WAIT_ENV = "RECFW_WEBHOOK_EXIT_WAIT"
DEFAULT_EXIT_WAIT = 3.0
MAX_EXIT_WAIT = 30.0
#: Hours a webhook is retried before it is given up.
MAX_AGE_ENV = "RECFW_WEBHOOK_MAX_AGE_HOURS"


def exit_wait(environ: Mapping[str, str] | None = None) -> float:
    """``RECFW_WEBHOOK_EXIT_WAIT`` in 0..30 seconds (default 3; not a number: default)."""
    environ = os.environ if environ is None else environ
    raw = environ.get(EXIT_WAIT_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_EXIT_WAIT
    except ValueError:
        log.warning(
            "%s=%r is not a number of seconds; using %g", EXIT_WAIT_ENV, raw, DEFAULT_EXIT_WAIT
        )
        value = DEFAULT_EXIT_WAIT
    if value != value:  # NaN
        value = DEFAULT_EXIT_WAIT
    return min(max(value, 0.0), MAX_EXIT_WAIT)


def delivery_policy(environ: Mapping[str, str] | None = None) -> DeliveryPolicy:
    """The delivery policy, with ``RECFW_WEBHOOK_MAX_AGE_HOURS`` if set."""
    environ = os.environ if environ is None else environ
    raw = environ.get(MAX_AGE_ENV, "").strip()
    if not raw:
        return DeliveryPolicy()
    try:
        hours = float(raw)
        if not 0 < hours <= 24 * 30:
            raise ValueError
    except ValueError:
        raise SettingsError(
            [FieldError(MAX_AGE_ENV, "must be a number of hours above 0, at most 720")]
        ) from None
    return DeliveryPolicy(max_age=timedelta(hours=hours))


def sync_endpoints(db: Database, config: Config) -> int:
    """Make the config's ``[[webhooks]]`` the ``source="config"`` endpoints.

    Every URL is checked with :mod:`recfw.netguard` first: a refused one is a
    ``SettingsError`` naming ``webhooks[i].url``. Returns how many are active.
    """
    from .. import netguard

    errors: list[FieldError] = []
    for i, endpoint in enumerate(config.webhooks):
        errors.extend(netguard.url_errors(endpoint.url, f"webhooks[{i}].url"))
    if errors:
        raise SettingsError(errors)
    with db.session() as s:
        return len(EndpointStore().sync_config(s, config.webhooks))


@dataclass
class ControlRuntime:
    """The database, the event service, the webhook worker and the uploader of one process."""

    db: Database
    events: ControlEvents
    worker: WebhookWorker
    uploader: BackgroundUploader
    _stop: asyncio.Event | None = None
    _tasks: list[asyncio.Task] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        config: Config,
        plugins: Plugins,
        *,
        db: Database | None = None,
        environ: Mapping[str, str] | None = None,
        upload_policy: UploadPolicy | None = None,
    ) -> ControlRuntime:
        """Open (and migrate) the configured database unless ``db`` is given, and sync
        the webhook endpoints."""
        from .db import Database

        db = db or Database.open(config, environ)
        sync_endpoints(db, config)
        from ..settings import effective

        default = effective(config.recording, None, plugins).destination
        events = ControlEvents(db, default_destination=default)
        worker = WebhookWorker(db, delivery_policy(environ))
        events.on_committed(worker.wake)
        uploader = BackgroundUploader(db, plugins, events, upload_policy)
        return cls(db, events, worker, uploader)

    async def start(self, *, uploads: bool = True) -> None:
        """Start delivering webhooks (and, with ``uploads``, retrying kept recordings)."""
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.worker.run(self._stop), name="recfw-webhooks"))
        if uploads:
            self._tasks.append(
                loop.create_task(self.uploader.run(self._stop), name="recfw-uploader")
            )

    async def stop(self, flush: float | None = None) -> int:
        """Stop the background work; deliver what is due for up to ``flush`` seconds
        (default :func:`exit_wait`). Returns how many deliveries still wait."""
        if self._stop is not None:
            self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 15)
        self._tasks.clear()
        wait = exit_wait() if flush is None else flush
        left = await self.worker.flush(wait) if wait > 0 else await self._pending()
        if left:
            log.warning(
                "%d webhook deliveries still pending: they wait in the database and are "
                "sent at the next start (`recfw webhooks deliveries --status pending`)",
                left,
            )
        return left

    async def _pending(self) -> int:
        from .outbox import Outbox

        await self.worker.close()
        with self.db.session(readonly=True) as s:
            return Outbox.pending_count(s)

    def close(self) -> None:
        self.db.dispose()


__all__ = ["ControlRuntime", "delivery_policy", "exit_wait", "sync_endpoints"]
