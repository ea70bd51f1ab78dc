"""Options shared by several subcommands."""

from __future__ import annotations

from pathlib import Path

import click


def config_option(default_help: str):
    """``--config FILE``: the TOML config file; ``default_help`` says what applies without it."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help=f"Config file (TOML). Default: {default_help}",
    )
