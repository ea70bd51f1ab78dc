"""``recfw webhooks``: the endpoints, their deliveries, and replaying them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from ..config import load_config
from ..events import EVENT_TYPES, new_secret, standard_secret
from ..secrets import safe_url
from .options import apply_runtime_settings, config_option

if TYPE_CHECKING:
    from ..control import Database

DELIVERY_STATUSES = ("pending", "delivered", "failed")


def _open(config_path: Path | None) -> Database:
    from ..control import Database
    from ..control.runtime import sync_endpoints

    config = load_config(config_path)
    apply_runtime_settings(config)
    db = Database.open(config)
    sync_endpoints(db, config)
    return db


def _console() -> Console:
    return Console(soft_wrap=True, highlight=False, markup=False)


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhook endpoints and deliveries (kept in the database; see docs/webhooks.md).

    Endpoints come from the config file's [[webhooks]] (synced at every start) or
    from `recfw webhooks add`. Every event is delivered at least once, in order per
    endpoint, retried for hours; these commands show what happened and replay it.
    """


@webhooks_group.command("list")
@config_option("the embedded defaults.")
def list_command(config_path: Path | None) -> None:
    """List the endpoints (id, URL without credentials, events, where they came from)."""
    from ..control import EndpointStore
    from ..control.models import WebhookDelivery

    db = _open(config_path)
    console = _console()
    with db.session(readonly=True) as s:
        rows = EndpointStore().list(s, disabled=True)
        if not rows:
            console.print(
                "no webhook endpoints (add [[webhooks]] to the config file or "
                "use `recfw webhooks add URL`)"
            )
        for row in rows:
            pending = (
                s.query(WebhookDelivery).filter_by(endpoint_id=row.id, status="pending").count()
            )
            events = ", ".join(row.events) if row.events is not None else "all events"
            state = "disabled" if row.disabled_at is not None else "active"
            console.print(
                f"{row.id}  {safe_url(row.url)}  [{events}]  {row.source}, {state}, "
                f"{pending} pending"
            )
    db.dispose()


@webhooks_group.command("add")
@config_option("the embedded defaults.")
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    type=click.Choice(EVENT_TYPES),
    help="An event type to send (repeatable; default: every type).",
)
@click.option("--secret", default=None, help="The signing secret (default: a new whsec_ one).")
def add_command(
    config_path: Path | None, url: str, events: tuple[str, ...], secret: str | None
) -> None:
    """Add an endpoint; its secret is shown once."""
    from .. import netguard
    from ..control import EndpointStore

    if not url.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http:// or https:// URL", param_hint="URL")
    db = _open(config_path)
    problems = netguard.url_errors(url, "URL")
    if problems:
        db.dispose()
        raise click.BadParameter(problems[0].message, param_hint="URL")
    secret = secret or new_secret()
    with db.session() as s:
        row = EndpointStore().add(s, url, secret, list(events) or None, source="cli")
        endpoint_id = row.id
    db.dispose()
    console = _console()
    console.print(f"added {endpoint_id}  {safe_url(url)}")
    console.print(f"secret (shown once): {secret}")
    if standard_secret(secret) != secret:
        console.print(f"as a Standard Webhooks secret: {standard_secret(secret)}")


@webhooks_group.command("remove")
@config_option("the embedded defaults.")
@click.argument("endpoint_id")
def remove_command(config_path: Path | None, endpoint_id: str) -> None:
    """Stop sending to an endpoint (its deliveries stay listed)."""
    from ..control import EndpointStore

    db = _open(config_path)
    with db.session() as s:
        row = EndpointStore().disable(s, endpoint_id)
    db.dispose()
    if row is None:
        raise click.BadParameter(f"no endpoint {endpoint_id}", param_hint="ENDPOINT_ID")
    _console().print(f"disabled {endpoint_id}")


@webhooks_group.command("deliveries")
@config_option("the embedded defaults.")
@click.option("--status", type=click.Choice(DELIVERY_STATUSES), default=None, help="Only these.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
def deliveries_command(config_path: Path | None, status: str | None, limit: int) -> None:
    """List deliveries, newest first: id, status, attempts, event, endpoint, last error."""
    from ..control import Outbox
    from ..control.models import OutboxEvent, WebhookEndpoint

    db = _open(config_path)
    console = _console()
    with db.session(readonly=True) as s:
        rows = Outbox.deliveries(s, status=status, limit=limit)
        if not rows:
            console.print("no deliveries" + (f" with status {status}" if status else ""))
        for row in rows:
            event = s.query(OutboxEvent).filter_by(id=row.event_id).one_or_none()
            endpoint = s.get(WebhookEndpoint, row.endpoint_id)
            code = f" HTTP {row.last_status_code}" if row.last_status_code else ""
            error = f"  ({row.last_error})" if row.last_error else ""
            when = (
                f" next {row.next_attempt_at:%Y-%m-%d %H:%M:%S}Z" if row.status == "pending" else ""
            )
            console.print(
                f"{row.id}  {row.status}{code}  attempts {row.attempts}{when}  "
                f"{event.type if event else '?'} {row.event_id}  -> "
                f"{safe_url(endpoint.url) if endpoint else row.endpoint_id}{error}"
            )
    db.dispose()


@webhooks_group.command("retry")
@config_option("the embedded defaults.")
@click.argument("delivery_ids", nargs=-1, type=int)
@click.option("--failed", "all_failed", is_flag=True, help="Retry every failed delivery.")
def retry_command(
    config_path: Path | None, delivery_ids: tuple[int, ...], all_failed: bool
) -> None:
    """Send deliveries again (by id, or every failed one): they become pending, due now,
    and the running server (or the next start) sends them."""
    from ..control import Outbox

    if not delivery_ids and not all_failed:
        raise click.UsageError("give delivery ids or --failed")
    db = _open(config_path)
    missing = []
    with db.session() as s:
        ids = list(delivery_ids)
        if all_failed:
            ids += [row.id for row in Outbox.deliveries(s, status="failed", limit=1_000_000)]
        done = 0
        for delivery_id in ids:
            if Outbox.requeue(s, delivery_id):
                done += 1
            else:
                missing.append(delivery_id)
    db.dispose()
    _console().print(f"{done} deliveries queued again")
    if missing:
        raise click.BadParameter(
            f"no delivery {', '.join(map(str, missing))}", param_hint="DELIVERY_IDS"
        )


__all__ = ["webhooks_group"]
