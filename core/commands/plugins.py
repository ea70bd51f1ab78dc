"""``recfw plugins``: what is installed, what each plugin provides, what failed."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..manager import KINDS, PluginInfo, load_plugins

_REGISTER_HOOKS = {hook for hook, _protocol in KINDS.values()}


def _other_hooks(info: PluginInfo) -> list[str]:
    """Hooks beyond the register_* ones (event listeners, commands)."""
    return [h for h in info.hooks if h not in _REGISTER_HOOKS]


def _provides(info: PluginInfo) -> str:
    lines = [f"{kind}: {', '.join(names)}" for kind, names in info.provides.items() if names]
    other = _other_hooks(info)
    if other:
        lines.append(f"hooks: {', '.join(other)}")
    return "\n".join(lines) or "-"


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List loaded plugins with what they provide, and plugins that failed to load.

    Exits with status 1 when a plugin failed to load.
    """
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
                            "hooks": i.hooks,
                        }
                        for i in plugins.info.values()
                    ],
                    "failures": [vars(f) for f in plugins.failures],
                },
                indent=2,
            )
        )
    else:
        console = Console(highlight=False)
        table = Table(title="recfw plugins")
        # "fold": a long name wraps onto the next line instead of being cut off.
        table.add_column("plugin", overflow="fold")
        table.add_column("distribution", overflow="fold")
        table.add_column("provides", overflow="fold")
        for info in plugins.info.values():
            dist = f"{info.distribution or '-'} {info.version or ''}".strip()
            table.add_row(escape(info.name), escape(dist), escape(_provides(info)))
        console.print(table)
        for failure in plugins.failures:
            console.print(f"[red]FAILED[/red] {escape(str(failure))}")
    if plugins.failures:
        raise SystemExit(1)
