"""Signed webhooks, delivered from the control plane's outbox.

Every event the engine emits is written to the database's outbox in the same
transaction as the state it describes (:mod:`recfw.control.events`); the
webhook worker (:mod:`recfw.control.delivery`) then POSTs it to every endpoint
that wants its type: at least once, in order per endpoint, retried with
exponential backoff and jitter for hours (``Retry-After`` honoured), never
following redirects, and signed twice (Standard Webhooks headers and
``Whereby-Signature``; see :mod:`recfw.events` and docs/webhooks.md).

Endpoints are the config file's ``[[webhooks]]`` (synced into the
``webhook_endpoints`` table at every start) and those added with
``recfw webhooks add``. Nothing waits in memory: a process that exits (or is
killed) leaves its pending deliveries in the database for the next start.

This built-in plugin has no hook of its own any more (it used to send from a
``recfw_on_event`` listener in memory); it stays as the documented home of the
names a plugin author may want.
"""

from __future__ import annotations

from recfw.control.delivery import DeliveryPolicy, Outcome, WebhookWorker, body_of
from recfw.events import sign, signed_headers, standard_headers, verify
from recfw.secrets import safe_url

__all__ = [
    "DeliveryPolicy",
    "Outcome",
    "WebhookWorker",
    "body_of",
    "safe_url",
    "sign",
    "signed_headers",
    "standard_headers",
    "verify",
]
