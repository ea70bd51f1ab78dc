"""The ``recfw`` command."""

from __future__ import annotations

import logging
import sys
from importlib import import_module

import click

from . import __version__
from .commands import COMMANDS
from .errors import PluginError, RecfwError, SettingsError


class _Group(click.Group):
    """Turns recfw's own errors into one clear line and exit status 2 or 1.

    Lazy: a built-in subcommand's module is imported when that command runs,
    and plugins are loaded only for a name that is not built in, or for the
    command list when third-party plugins are installed (they may add
    commands). ``recfw --version`` and ``recfw --help`` load no plugin.
    """

    _plugins_asked = False

    def _add_plugin_commands(self) -> None:
        if self._plugins_asked:
            return
        self._plugins_asked = True
        # Loading can fail in strict mode (RECFW_STRICT_PLUGINS), which must read
        # as one line, not a traceback.
        from .manager import load_plugins

        try:
            load_plugins().register_commands(self)
        except PluginError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            module, attribute, _ = COMMANDS[cmd_name]
            command = getattr(import_module(module), attribute)
            self.add_command(command, cmd_name)
        if command is None:
            self._add_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        from .manager import third_party_entry_points

        if third_party_entry_points():
            self._add_plugin_commands()
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list, with built-ins' help from COMMANDS (nothing imported)."""
        rows = []
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is None and name in COMMANDS:
                text = COMMANDS[name][2]
                rows.append((name, click.Command(name, help=text).get_short_help_str(limit)))
            elif command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            click.echo("error: invalid settings:", err=True)
            for error in exc.errors:
                click.echo(f"  {error}", err=True)
            sys.exit(2)
        except RecfwError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="recfw")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Record video meetings and store the files in a bucket you own.

    \b
    Start here:
      recfw demo                 record a few synthetic participants into ./recordings
      recfw run                  serve rooms and record them per your settings
      recfw settings check FILE  validate a config file and show its effective settings
      recfw plugins              list the triggers, formats, storage and sources installed
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s"
    )
