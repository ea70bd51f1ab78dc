"""``recfw db``: the control plane's database (where it is, its schema)."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import load_config
from .options import config_option


@click.group("db")
def db_group() -> None:
    """recfw's database: SQLite in .recfw/ by default, or PostgreSQL.

    Set [server] database = "postgresql://..." (or RECFW_DATABASE_URL) to use
    PostgreSQL. The schema is migrated automatically at start; see docs/database.md.
    """


@db_group.command("upgrade")
@config_option("the embedded default (SQLite in .recfw/).")
def upgrade_command(config_path: Path | None) -> None:
    """Migrate the database to the schema of this recfw (also done at every start)."""
    from ..control import Database

    db = Database.open(load_config(config_path), upgrade=False)
    try:
        before = db.current_revision()
        db.upgrade()
        db.check_key()
        after = db.current_revision()
    finally:
        db.dispose()
    if before == after:
        click.echo(f"{db.shown_url()}: schema up to date ({after})")
    else:
        click.echo(f"{db.shown_url()}: schema migrated from {before or 'empty'} to {after}")


@db_group.command("info")
@config_option("the embedded default (SQLite in .recfw/).")
def info_command(config_path: Path | None) -> None:
    """Show which database is used, its schema revision and what it holds."""
    from sqlalchemy import func, select

    from ..control import Database
    from ..control.migrate import head_revision
    from ..control.models import ApiKey, Meeting, Recording, WebhookDelivery, WebhookEndpoint

    db = Database.open(load_config(config_path), upgrade=False)
    try:
        current, head = db.current_revision(), head_revision()
        click.echo(f"database:     {db.shown_url()} ({db.kind}, from {db.source})")
        click.echo(f"data folder:  {db.data_dir}")
        click.echo(f"secret key:   {db.cipher.source}")
        state = "up to date" if current == head else "needs `recfw db upgrade`"
        click.echo(f"schema:       {current or 'empty'} (newest {head}: {state})")
        if current != head:
            return
        with db.session(readonly=True) as s:

            def count(model, *where) -> int:
                return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

            click.echo(f"meetings:     {count(Meeting, Meeting.deleted_at.is_(None))}")
            by_status = dict(
                s.execute(select(Recording.status, func.count()).group_by(Recording.status)).all()
            )
            shown = ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "none"
            click.echo(f"recordings:   {shown}")
            click.echo(f"API keys:     {count(ApiKey, ApiKey.revoked_at.is_(None))} live")
            endpoints = count(WebhookEndpoint, WebhookEndpoint.disabled_at.is_(None))
            pending = count(WebhookDelivery, WebhookDelivery.status == "pending")
            click.echo(f"webhooks:     {endpoints} endpoints, {pending} deliveries pending")
    finally:
        db.dispose()
