"""``recfw settings``: validate configuration files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..config import load_config
from ..errors import SettingsError
from ..manager import load_plugins
from ..secrets import mask_url_credentials
from ..settings import validate, validate_encoder_options
from .options import apply_runtime_settings


@click.group("settings")
def settings_group() -> None:
    """Validate and show recording settings."""


@settings_group.command("check")
@click.argument("config_file", type=click.Path(dir_okay=False, path_type=Path))
def check_command(config_file: Path) -> None:
    """Validate CONFIG_FILE (TOML) and print the effective settings, secrets masked.

    Exits with status 2 and one line per problem, each naming its field, when the
    file is invalid.
    """
    config = load_config(config_file)
    apply_runtime_settings(config)  # allowedDestinations apply to the checks below
    plugins = load_plugins()
    for failure in plugins.failures:
        # A provider, format or trigger may be "unknown" only because its plugin broke.
        click.echo(f"warning: {failure}", err=True)
    errors = validate(config.recording, plugins)
    destination = config.recording.destination
    errors += validate_encoder_options(
        destination.file_format if destination else None, config.encoder, plugins
    )
    if errors:
        raise SettingsError(errors)
    out = {
        "recording": config.recording.to_dict(),
        "encoder": dict(config.encoder),
        "server": {
            "host": config.server.host,
            "port": config.server.port,
            "iceAddresses": list(config.server.ice_addresses),
            "publicUrl": config.server.public_url,
            "allowedDestinations": list(config.server.allowed_destinations),
        },
        "webhooks": [
            {
                "url": mask_url_credentials(w.url),
                "secret": str(w.secret),
                "events": list(w.events) if w.events is not None else None,
            }
            for w in config.webhooks
        ],
    }
    click.echo(f"{config_file}: valid")
    # default=str: TOML dates and times in [encoder] are shown as text.
    click.echo(json.dumps(out, indent=2, default=str))
