"""``recfw keys``: API keys for the REST API (stored hashed; a new key is shown once)."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import load_config
from ..errors import RecfwError
from .options import config_option


def _open(config_path: Path | None):
    from ..control import Database

    return Database.open(load_config(config_path))


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "-"


@click.group("keys")
def keys_group() -> None:
    """API keys: `Authorization: Bearer <key>` on every /v1 request.

    Keys live in recfw's database (see docs/database.md), stored as SHA-256
    hashes: a key is shown once, when it is made. RECFW_API_KEY (or [server]
    apiKey) still works as a bootstrap key next to them.
    """


@keys_group.command("create")
@config_option("the embedded default (SQLite in .recfw/).")
@click.option("--name", default="api key", show_default=True, help="What the key is for.")
@click.option("--admin", is_flag=True, help="May manage keys and settings through the API.")
def create_command(config_path: Path | None, name: str, admin: bool) -> None:
    """Make a new key and print it (once: it is not stored, only its hash)."""
    from ..control import ApiKeyStore

    name = name.strip()
    if not name or len(name) > 200:
        raise click.BadParameter("must be 1 to 200 characters", param_hint="--name")
    db = _open(config_path)
    try:
        with db.session() as s:
            new = ApiKeyStore().create(s, name, admin=admin)
    finally:
        db.dispose()
    click.echo(new.key)
    click.echo(
        f"key {new.row.id} ({name}{', admin' if admin else ''}) made: copy it now, "
        "it cannot be shown again.",
        err=True,
    )


@keys_group.command("list")
@config_option("the embedded default (SQLite in .recfw/).")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
def list_command(config_path: Path | None, show_all: bool) -> None:
    """List keys: id, prefix, name, admin, created, last used (never the key)."""
    from ..control import ApiKeyStore

    db = _open(config_path)
    try:
        with db.session(readonly=True) as s:
            rows = ApiKeyStore().list(s, revoked=show_all)
    finally:
        db.dispose()
    if not rows:
        click.echo("no API keys (make one with: recfw keys create --name NAME)")
        return
    click.echo(f"{'ID':36}  {'PREFIX':12}  {'ADMIN':5}  {'CREATED':20}  {'LAST USED':20}  NAME")
    for row in rows:
        revoked = f"  (revoked {_when(row.revoked_at)})" if row.revoked_at else ""
        click.echo(
            f"{row.id:36}  {row.prefix:12}  {'yes' if row.admin else 'no':5}  "
            f"{_when(row.created_at):20}  {_when(row.last_used_at):20}  {row.name}{revoked}"
        )


@keys_group.command("revoke")
@config_option("the embedded default (SQLite in .recfw/).")
@click.argument("key_id")
def revoke_command(config_path: Path | None, key_id: str) -> None:
    """Revoke the key KEY_ID (its id or its prefix, as `recfw keys list` shows)."""
    from ..control import ApiKeyStore

    db = _open(config_path)
    try:
        with db.session() as s:
            row = ApiKeyStore().revoke(s, key_id)
            if row is None:
                raise RecfwError(f"no API key with id or prefix {key_id!r} (see recfw keys list)")
            name = row.name
    finally:
        db.dispose()
    click.echo(f"revoked key {key_id} ({name}): requests with it now get 401")


@keys_group.command("secret-key")
def secret_key_command() -> None:
    """Print a new random key for RECFW_SECRET_KEY (encrypts stored secrets).

    Only for a new installation or a rotation: RECFW_SECRET_KEY="NEW,OLD"
    encrypts with NEW and still reads what OLD encrypted.
    """
    from ..control.crypto import new_key

    click.echo(new_key())
