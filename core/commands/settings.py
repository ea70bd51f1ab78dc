"""``recfw settings``: validate configuration files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print only JSON on stdout: the settings, or {"errors": [{field, message}]}.',
)
def check_command(config_file: Path, as_json: bool) -> None:
    """Validate CONFIG_FILE (TOML) and print the effective settings, secrets masked.

    Exits with status 3 and one line per problem, each naming its field, when the
    file is invalid (with --json, the problems are also printed as JSON on stdout).
    """
    try:
        out = _checked(config_file)
    except SettingsError as exc:
        if as_json:
            errors = [{"field": e.field, "message": e.message} for e in exc.errors]
            click.echo(json.dumps({"errors": errors}, indent=2))
        raise
    if not as_json:
        click.echo(f"{config_file}: valid")
    # default=str: TOML dates and times in [encoder] are shown as text.
    click.echo(json.dumps(out, indent=2, default=str))


def _checked(config_file: Path) -> dict[str, Any]:
    """The file's settings as shown by ``check``; ``SettingsError`` if invalid."""
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
    return {
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
