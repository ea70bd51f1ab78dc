"""``recfw plugins``: what is installed, what each plugin provides, what failed."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from ..manager import KINDS, load_plugins


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List loaded plugins with what they provide, and plugins that failed to load."""
    plugins = load_plugins()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "plugins": [
                        {
                            "name": i.name,
                            "distribution": i.distribution,
                            "version": i.version,
                            "provides": i.provides,
                        }
                        for i in plugins.info.values()
                    ],
                    "failures": [vars(f) for f in plugins.failures],
                },
                indent=2,
            )
        )
        return
    console = Console(highlight=False)
    table = Table(title="recfw plugins")
    table.add_column("plugin")
    table.add_column("distribution")
    for kind in KINDS:
        table.add_column(kind)
    for info in plugins.info.values():
        dist = f"{info.distribution or '-'} {info.version or ''}".strip()
        table.add_row(info.name, dist, *(", ".join(info.provides.get(kind, [])) for kind in KINDS))
    console.print(table)
    for failure in plugins.failures:
        console.print(f"[red]FAILED[/red] {failure}", markup=True)
    if plugins.failures:
        raise SystemExit(1)
