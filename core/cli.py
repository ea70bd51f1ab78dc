"""The ``recfw`` command."""

from __future__ import annotations

import logging
import sys

import click

from . import __version__
from .commands import COMMANDS
from .errors import PluginError, RecfwError, SettingsError


class _Group(click.Group):
    """Turns recfw's own errors into one clear line and exit status 2 or 1."""

    def main(self, *args, **kwargs):
        # Plugins may add subcommands; loading them can fail in strict mode
        # (RECFW_STRICT_PLUGINS), which must read as one line, not a traceback.
        from .manager import load_plugins

        try:
            load_plugins().register_commands(self)
        except PluginError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        return super().main(*args, **kwargs)

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


for _command in COMMANDS:
    main.add_command(_command)
