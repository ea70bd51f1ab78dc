"""``recfw spool``: recordings that wait on local disk, and storing them again."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from ..spool import DEFAULT_SPOOL_DIR, pending, upload_file
from .options import config_option, destination_of, load_effective

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


@spool_group.command("list")
@spool_dir_option
def list_command(spool_dir: Path) -> None:
    """List the recordings in the spool."""
    console = Console(soft_wrap=True, highlight=False)
    entries = pending(spool_dir)
    if not entries:
        console.print(f"{spool_dir}: no recordings waiting")
        return
    for entry in entries:
        if entry.in_use:
            note = "  (being recorded or stored)"
        elif entry.empty:
            note = "  (empty: stopped before it wrote anything; `recfw spool upload` removes it)"
        else:
            note = ""
        console.print(f"{entry.path}  {entry.size / 1e6:.2f} MB{note}")


@spool_group.command("upload")
@config_option("record to ./recordings.")
@spool_dir_option
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, exists=True, path_type=Path))
def upload_command(config_path: Path | None, spool_dir: Path, files: tuple[Path, ...]) -> None:
    """Store spooled recordings (all, or FILES from the spool) at the configured destination.

    Each goes under its own file name; its local copy is removed only once the
    destination confirmed it. Safe to run while recordings run and while
    another upload runs: a file in use is skipped, one another upload stored
    is reported as such. An empty file left by a recording stopped before its
    first write is removed. Exits 1 if any could not be stored (or a FILE
    named on the command line is in use).
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
    failed = 0
    for path in paths:
        result = upload_file(path, destination_of(settings), plugins)
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
