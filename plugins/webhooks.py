"""Signed webhooks: every event goes to each ``[[webhooks]]`` endpoint that wants it.

For each endpoint of ``config.webhooks`` whose ``events`` include the event's
type, the event's raw JSON body is POSTed with ``Content-Type:
application/json`` and the ``Recfw-Signature`` header
(:func:`recfw.events.sign` with the endpoint's secret, signed afresh at each
attempt). Delivery runs in a background thread per endpoint, so the engine is
never blocked and one endpoint's events arrive in the order they happened.

A delivery is retried on connection errors, timeouts, 429 and 5xx responses,
up to ``max_attempts`` times with exponential backoff; other 4xx responses are
not retried. Failures are logged with the URL stripped of credentials and
query string, never with the secret.

Call :func:`flush` to wait for pending deliveries. An ``atexit`` hook waits
for them up to :data:`EXIT_FLUSH_TIMEOUT` seconds (``RECFW_WEBHOOK_EXIT_WAIT``
sets another bound) and logs at WARNING every delivery it had to drop (event
type and id only).
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recfw import hookimpl
from recfw.events import SIGNATURE_HEADER, sign
from recfw.secrets import Secret, safe_url

if TYPE_CHECKING:
    from recfw.config import Config, WebhookEndpoint
    from recfw.events import Event

log = logging.getLogger(__name__)

#: Seconds the interpreter waits at exit for deliveries still pending.
EXIT_FLUSH_TIMEOUT = 30.0
#: Environment variable overriding :data:`EXIT_FLUSH_TIMEOUT` (seconds, 0 = do not wait).
EXIT_WAIT_ENV = "RECFW_WEBHOOK_EXIT_WAIT"
#: Upper bound on any exit wait, whatever the environment says.
MAX_EXIT_WAIT = 600.0
#: At most this many dropped deliveries are listed one by one in the exit warning.
MAX_LISTED_DROPS = 20
USER_AGENT = "recfw-webhooks/1"


@dataclass(frozen=True)
class Delivery:
    """One event body for one endpoint."""

    url: str
    secret: Secret
    body: bytes
    event_type: str
    event_id: str


@dataclass
class DeliveryResult:
    """What became of a delivery (kept for :attr:`WebhookDispatcher.results`)."""

    url: str
    event_id: str
    ok: bool
    attempts: int
    status: int | None
    error: str | None


class WebhookDispatcher:
    """Posts deliveries from background threads (one per endpoint URL), with retries."""

    def __init__(
        self,
        *,
        max_attempts: int = 5,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 10.0,
        keep_results: int = 100,
    ):
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.keep_results = keep_results
        self.results: list[DeliveryResult] = []
        self._queues: dict[str, queue.Queue[Delivery]] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        # Deliveries queued or in flight, by identity: what an exit would drop.
        self._outstanding: dict[int, Delivery] = {}
        self._closed = threading.Event()

    # --- submitting -----------------------------------------------------------

    def submit(self, endpoint: WebhookEndpoint, event: Event) -> None:
        """Queue ``event`` for ``endpoint``; returns at once."""
        delivery = Delivery(endpoint.url, endpoint.secret, event.body(), event.type, event.id)
        with self._lock:
            self._pending += 1
            self._outstanding[id(delivery)] = delivery
            q = self._queues.get(endpoint.url)
            if q is None:
                q = self._queues[endpoint.url] = queue.Queue()
                thread = threading.Thread(
                    target=self._work,
                    args=(q,),
                    name=f"recfw-webhook {safe_url(endpoint.url)}",
                    daemon=True,
                )
                thread.start()
        q.put(delivery)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued delivery is done; ``False`` if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def pending_deliveries(self) -> list[tuple[str, str]]:
        """``(event_type, event_id)`` of each delivery queued or in flight, oldest first."""
        with self._lock:
            return [(d.event_type, d.event_id) for d in self._outstanding.values()]

    # --- delivering -----------------------------------------------------------

    def _work(self, q: queue.Queue[Delivery]) -> None:
        while True:
            delivery = q.get()
            try:
                result = self.deliver(delivery)
            except Exception as exc:  # noqa: BLE001 - never kill the worker
                log.error("webhook to %s: unexpected error %s", safe_url(delivery.url), exc)
                result = DeliveryResult(
                    delivery.url, delivery.event_id, False, 0, None, type(exc).__name__
                )
            with self._idle:
                self.results.append(result)
                del self.results[: -self.keep_results]
                self._pending -= 1
                self._outstanding.pop(id(delivery), None)
                self._idle.notify_all()

    def deliver(self, delivery: Delivery) -> DeliveryResult:
        """POST ``delivery`` with retries; blocks (it runs in a worker thread)."""
        url = safe_url(delivery.url)
        status: int | None = None
        error: str | None = None
        for attempt in range(1, self.max_attempts + 1):
            status, error, retry = self._post(delivery)
            if error is None:
                log.debug(
                    "webhook %s %s delivered to %s", delivery.event_type, delivery.event_id, url
                )
                return DeliveryResult(delivery.url, delivery.event_id, True, attempt, status, None)
            if not retry or attempt == self.max_attempts:
                break
            wait = min(self.backoff * 2 ** (attempt - 1), self.backoff_max)
            log.info(
                "webhook %s to %s failed (%s), attempt %d of %d; retrying in %.1fs",
                delivery.event_type,
                url,
                error,
                attempt,
                self.max_attempts,
                wait,
            )
            if self._closed.wait(wait):
                break
        log.error(
            "webhook %s (%s) to %s failed after %d attempt(s): %s",
            delivery.event_type,
            delivery.event_id,
            url,
            attempt,
            error,
        )
        return DeliveryResult(delivery.url, delivery.event_id, False, attempt, status, error)

    def _post(self, delivery: Delivery) -> tuple[int | None, str | None, bool]:
        """One attempt: ``(status, error or None, worth retrying)``."""
        request = urllib.request.Request(
            delivery.url,
            data=delivery.body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                SIGNATURE_HEADER: sign(delivery.body, delivery.secret.reveal()),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read(65536)
                return response.status, None, False
        except urllib.error.HTTPError as exc:
            exc.close()
            retry = exc.code == 429 or exc.code >= 500
            return exc.code, f"HTTP {exc.code}", retry
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return None, f"{type(reason).__name__}: {reason}", True


_dispatcher: WebhookDispatcher | None = None
_dispatcher_lock = threading.Lock()


def get_dispatcher() -> WebhookDispatcher:
    """The process-wide dispatcher (created on first use, flushed at exit)."""
    global _dispatcher
    with _dispatcher_lock:
        if _dispatcher is None:
            _dispatcher = WebhookDispatcher()
            atexit.register(_flush_at_exit)
        return _dispatcher


def flush(timeout: float | None = None) -> bool:
    """Wait for pending webhook deliveries; ``False`` if ``timeout`` ran out first."""
    if _dispatcher is None:
        return True
    return _dispatcher.flush(timeout)


def exit_wait(environ: Mapping[str, str] | None = None) -> float:
    """Seconds to wait at exit: ``RECFW_WEBHOOK_EXIT_WAIT`` or :data:`EXIT_FLUSH_TIMEOUT`.

    The value is bounded to 0..:data:`MAX_EXIT_WAIT`; a value that is not a
    number is logged and the default used.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get(EXIT_WAIT_ENV, "").strip()
    if not raw:
        return EXIT_FLUSH_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if math.isnan(seconds):
        log.warning(
            "%s=%r is not a number of seconds; waiting %.0fs",
            EXIT_WAIT_ENV,
            raw,
            EXIT_FLUSH_TIMEOUT,
        )
        return EXIT_FLUSH_TIMEOUT
    return min(max(seconds, 0.0), MAX_EXIT_WAIT)


def flush_at_exit(
    dispatcher: WebhookDispatcher | None = None, timeout: float | None = None
) -> list[tuple[str, str]]:
    """Wait up to ``timeout`` (default :func:`exit_wait`) and report what is dropped.

    Returns the ``(event_type, event_id)`` of every delivery still pending when
    the wait ran out (logged at WARNING), ``[]`` if all were delivered or given up.
    """
    dispatcher = _dispatcher if dispatcher is None else dispatcher
    if dispatcher is None or not dispatcher.pending:
        return []
    wait = exit_wait() if timeout is None else timeout
    log.info("waiting up to %.3gs for %d webhook deliveries", wait, dispatcher.pending)
    if dispatcher.flush(wait):
        return []
    dropped = dispatcher.pending_deliveries()
    listed = ", ".join(f"{t} {i}" for t, i in dropped[:MAX_LISTED_DROPS])
    more = len(dropped) - MAX_LISTED_DROPS
    if more > 0:
        listed += f" and {more} more"
    log.warning(
        "%d webhook deliveries dropped at exit, still pending after %.3gs (%s=seconds waits "
        "longer): %s",
        len(dropped),
        wait,
        EXIT_WAIT_ENV,
        listed,
    )
    return dropped


def _flush_at_exit() -> None:
    try:
        flush_at_exit()
    except Exception:  # noqa: BLE001 - never fail the interpreter's exit
        log.exception("webhook flush at exit failed")


@hookimpl
def recfw_on_event(event: Event, config: Config) -> None:
    """Queue ``event`` for every configured endpoint that wants its type."""
    for endpoint in getattr(config, "webhooks", ()) or ():
        if endpoint.wants(event.type):
            get_dispatcher().submit(endpoint, event)


__all__ = [
    "WebhookDispatcher",
    "DeliveryResult",
    "flush",
    "flush_at_exit",
    "exit_wait",
    "get_dispatcher",
    "recfw_on_event",
    "safe_url",
]
