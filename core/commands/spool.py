"""``recfw spool``: recordings that wait on local disk, and storing them again."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from ..spool import DEFAULT_SPOOL_DIR, pending, upload_file
from .options import config_option, destination_of, load_effective

if TYPE_CHECKING:
    from ..control import Database, Recording
    from ..settings import Destination

spool_dir_option = click.option(
    "--spool",
    "spool_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_SPOOL_DIR,
    show_default=True,
    help="The spool folder.",
)


@click.group("spool")
def spool_group() -> None:
    """Recordings waiting on local disk: storing failed, or recfw stopped mid-recording.

    Nothing in the spool is ever deleted until its destination confirmed the copy.
    """


def _open_db(config_path: Path | None) -> Database:
    from ..config import load_config
    from ..control import Database

    return Database.open(load_config(config_path))


def _row_of(db: Database, path: Path) -> Recording | None:
    """The recording whose spool file ``path`` is (``None``: recfw has no record of it)."""
    from ..control import RecordingStore

    with db.session(readonly=True) as s:
        return RecordingStore().by_spool_path(s, str(path.resolve()))


def _where(row: Recording | None) -> str:
    if row is None:
        return "no record: goes to the configured destination"
    dest = row.destination or {}
    return f"{row.status}, to {dest.get('provider')}:{dest.get('bucket')}"


@spool_group.command("list")
@config_option("the embedded defaults.")
@spool_dir_option
def list_command(config_path: Path | None, spool_dir: Path) -> None:
    """List the recordings in the spool, each with where it goes (its own destination,
    recorded when it started) and why it waits."""
    console = Console(soft_wrap=True, highlight=False)
    entries = pending(spool_dir)
    if not entries:
        console.print(f"{spool_dir}: no recordings waiting")
        return
    db = _open_db(config_path)
    try:
        for entry in entries:
            row = _row_of(db, entry.path)
            if entry.in_use:
                note = "  (being recorded or stored)"
            elif entry.empty:
                note = (
                    "  (empty: stopped before it wrote anything; `recfw spool upload` removes it)"
                )
            else:
                note = ""
            reason = f"; {row.reason}" if row is not None and row.reason else ""
            console.print(
                f"{entry.path}  {entry.size / 1e6:.2f} MB{note}  ({_where(row)}{reason})",
                markup=False,
            )
    finally:
        db.dispose()


@spool_group.command("upload")
@config_option("record to ./recordings.")
@spool_dir_option
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, exists=True, path_type=Path))
def upload_command(config_path: Path | None, spool_dir: Path, files: tuple[Path, ...]) -> None:
    """Store spooled recordings (all, or FILES from the spool) at their own destinations.

    Each recording goes where it was meant to go when it started (its meeting's
    own bucket, recorded in the database), never to another; a file recfw has no
    record of goes to the configured destination. Each goes under its own file
    name; its local copy is removed only once the destination confirmed it.
    Safe to run while recordings run and while another upload (or the
    background uploader of `recfw run`) runs: a file in use is skipped, one
    another upload stored is reported as such. An empty file left by a
    recording stopped before its first write is removed. Exits 1 if any could
    not be stored (or a FILE named on the command line is in use).
    """
    console = Console(soft_wrap=True, highlight=False)
    _, plugins, settings = load_effective(config_path)
    outside = [f for f in files if f.resolve().parent != spool_dir.resolve()]
    if outside:
        raise click.BadParameter(
            f"{outside[0]} is not in the spool folder {spool_dir}", param_hint="FILES"
        )
    paths = list(files) or [e.path for e in pending(spool_dir) if not e.in_use]
    if not paths:
        console.print(f"{spool_dir}: no recordings waiting")
        return
    from ..control.events import ControlEvents
    from ..control.uploader import row_destination
    from ..errors import SettingsError

    db = _open_db(config_path)
    default = destination_of(settings)
    events = ControlEvents(db, default_destination=default)
    failed = 0
    for path in paths:
        row = _row_of(db, path)
        destination: Destination = default
        if row is not None:
            if row.status == "stored":
                console.print(f"skipped {path.name}: already stored as {row.location}")
                continue
            try:
                destination = row_destination(row, default)
            except SettingsError:
                failed += 1
                console.print(f"[red]not stored[/red] {path.name}: its destination is unreadable")
                continue
        result = upload_file(path, destination, plugins)
        if row is not None and result.outcome == "stored" and result.stored is not None:
            events.stored(row.recording_id, result.stored)
        elif row is not None and result.outcome == "empty":
            events.failed(row.recording_id, result.message, removed=True)
        if result.outcome == "stored" and result.stored is not None:
            stored = result.stored
            console.print(f"[green]stored[/green] {stored.location} ({stored.size / 1e6:.2f} MB)")
        elif result.outcome == "gone":
            console.print(f"skipped {result.message}")
        elif result.outcome == "busy":
            failed += bool(files)
            console.print(f"[yellow]skipped[/yellow] {result.message}")
        elif result.outcome == "empty":
            console.print(f"[yellow]removed[/yellow] {result.message}")
        else:
            failed += 1
            console.print(f"[red]not stored[/red] {path.name}: {result.message}")
    db.dispose()
    if failed:
        raise SystemExit(1)


def warn_about_waiting(console: Console, spool_dir: Path = DEFAULT_SPOOL_DIR) -> None:
    """One line when earlier recordings still wait in the spool."""
    waiting = [e for e in pending(spool_dir) if not e.in_use and not e.empty]
    if waiting:
        console.print(
            f"[yellow]{len(waiting)} recording(s) from earlier runs wait in {spool_dir}[/yellow]"
            " (storing failed or recfw stopped): `recfw spool upload` stores them."
        )
