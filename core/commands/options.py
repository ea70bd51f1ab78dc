"""Options shared by several subcommands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..config import load_config
from ..errors import SettingsError
from ..manager import load_plugins
from ..settings import effective, validate_encoder_options

if TYPE_CHECKING:
    from ..config import Config
    from ..manager import Plugins
    from ..recording import Destination, RecordingSettings


def config_option(default_help: str):
    """``--config FILE``: the TOML config file; ``default_help`` says what applies without it."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help=f"Config file (TOML). Default: {default_help}",
    )


def apply_runtime_settings(config: Config) -> None:
    """Make the config's process-wide settings current: the destinations recfw may
    connect to besides public hosts (``[server] allowedDestinations``) and the
    storage timeouts (``[storage]``). Call before validating or storing anything."""
    from ..netguard import set_policy
    from ..storage import set_transfer_options

    set_policy(config.server.allowed_destinations)
    set_transfer_options(config.storage)


def load_effective(config_path: Path | None) -> tuple[Config, Plugins, RecordingSettings]:
    """The config, the plugins and the validated effective recording settings.

    Raises ``SettingsError`` listing every field-named problem, encoder options
    included, before anything is recorded.
    """
    config = load_config(config_path)
    apply_runtime_settings(config)
    plugins = load_plugins()
    settings = effective(config.recording, None, plugins)
    errors = validate_encoder_options(
        settings.destination.file_format if settings.destination else None,
        config.encoder,
        plugins,
    )
    if errors:
        raise SettingsError(errors)
    return config, plugins, settings


def destination_of(settings: RecordingSettings) -> Destination:
    """The destination of effective settings (:func:`load_effective` always sets one)."""
    if settings.destination is None:
        raise click.ClickException("the recording settings have no destination")
    return settings.destination


def describe_destination(settings: RecordingSettings) -> str:
    """``mkv to local:./recordings``: what is recorded where, for the commands' first lines."""
    dest = destination_of(settings)
    return f"{dest.file_format} to {dest.provider}:{dest.bucket}"
