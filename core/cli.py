"""The ``recfw`` command.

Errors follow click's conventions: one ``Error: ...`` line on stderr (never a
traceback) and an exit status that says what kind of error it was:

====  ============================================================
0     success
1     the job failed (a recording that was not stored, a plugin or
      storage error, anything recfw reports on purpose)
2     usage: a bad option or argument (click's own status)
3     invalid settings: the config file, the environment or the
      encoder options; one line per problem, each naming its field
====  ============================================================
"""

from __future__ import annotations

import logging
import sys

import click

from . import __version__
from .commands import COMMANDS
from .errors import PluginError, RecfwError, SettingsError

#: Exit statuses (see the module docstring and docs/settings.md).
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_SETTINGS = 3


def settings_error_lines(exc: SettingsError) -> list[str]:
    """``Error: invalid settings:`` and one indented line per field-named problem."""
    return ["Error: invalid settings:", *(f"  {error}" for error in exc.errors)]


class _Group(click.Group):
    """Turns recfw's own errors into one clear ``Error:`` line and a documented exit status."""

    def main(self, *args, **kwargs):
        # Plugins may add subcommands; loading them can fail in strict mode
        # (RECFW_STRICT_PLUGINS), which must read as one line, not a traceback.
        from .manager import load_plugins

        try:
            load_plugins().register_commands(self)
        except PluginError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_FAILURE)
        return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            for line in settings_error_lines(exc):
                click.echo(line, err=True)
            sys.exit(EXIT_SETTINGS)
        except RecfwError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_FAILURE)


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

    \b
    Exit status: 0 success, 1 the job failed, 2 bad usage, 3 invalid settings.
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s"
    )


for _command in COMMANDS:
    main.add_command(_command)
