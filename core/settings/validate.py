"""Checking settings against the installed plugins, each problem naming its field.

A plugin's new trigger, format or provider is valid once it is installed:
the names come from a :class:`~recfw.registry.PluginRegistry`, and a sink's or
encoder's own checks (``validate``, ``validate_options``) run under the
settings' field names. A plugin whose check raises is reported as one error
naming the plugin, never as an exception. Messages that might quote a secret
pass through :func:`recfw.secrets.mask_secrets`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import FieldError, PluginError, describe
from ..recording import (
    RECORDING_TYPES,
    Destination,
    DestinationOverride,
    RecordingOverride,
    RecordingSettings,
)
from ..secrets import Secret, mask_secrets

if TYPE_CHECKING:
    from ..registry import PluginRegistry
    from ..storage import Sink


def _one_of(value: str | None, known: list[str], name: str, what: str) -> FieldError | None:
    if not value:
        return FieldError(name, f"is required (one of: {', '.join(known) or 'none installed'})")
    if value not in known:
        return FieldError(
            name, f"unknown {what} {value!r} (installed: {', '.join(known) or 'none'})"
        )
    return None


def validate(
    settings: RecordingOverride | RecordingSettings,
    plugins: PluginRegistry,
    prefix: str = "recording",
) -> list[FieldError]:
    """Every problem of merged ``settings``, each naming its field (secret masked).

    ``settings`` is what :func:`recfw.settings.merge` made (or effective
    settings to check again); an empty list means
    :func:`recfw.settings.effective` would accept it.
    """
    secret = settings.destination.access_key_secret if settings.destination else None
    return _scrub(_problems(settings, plugins, prefix), secret)


def _problems(
    settings: RecordingOverride | RecordingSettings, plugins: PluginRegistry, prefix: str
) -> list[FieldError]:
    errors: list[FieldError] = []

    def check(error: FieldError | None) -> None:
        if error is not None:
            errors.append(error)

    if settings.type not in RECORDING_TYPES:
        errors.append(
            FieldError(
                f"{prefix}.type",
                f"must be one of {', '.join(RECORDING_TYPES)}, not {settings.type!r}",
            )
        )
    check(
        _one_of(
            settings.start_trigger, plugins.trigger_names(), f"{prefix}.startTrigger", "trigger"
        )
    )
    if settings.max_duration is not None and settings.max_duration <= 0:
        errors.append(FieldError(f"{prefix}.maxDuration", "must be positive"))
    if settings.type in (None, "none") or settings.type not in RECORDING_TYPES:
        return errors

    dest = settings.destination or DestinationOverride()
    dprefix = f"{prefix}.destination"
    check(
        _one_of(dest.file_format, plugins.encoder_names(), f"{dprefix}.fileFormat", "file format")
    )
    provider_error = _one_of(dest.provider, plugins.sink_names(), f"{dprefix}.provider", "provider")
    check(provider_error)
    if settings.type == "local" and dest.provider not in (None, "", "local"):
        errors.append(
            FieldError(
                f"{dprefix}.provider",
                f'type "local" stores in a local folder, not {dest.provider!r}',
            )
        )
    if settings.type == "cloud" and dest.provider == "local":
        errors.append(
            FieldError(f"{dprefix}.provider", 'is "local"; use type "local" for a local folder')
        )
    if not dest.bucket:
        errors.append(FieldError(f"{dprefix}.bucket", "is required"))
    if provider_error is None and dest.provider:
        sink = plugins.sink(dest.provider)
        if getattr(sink, "needs_credentials", False):
            if not dest.access_key_id:
                errors.append(
                    FieldError(
                        f"{dprefix}.accessKeyId",
                        f"is required for provider {dest.provider!r} (or set RECFW_ACCESS_KEY_ID)",
                    )
                )
            if not dest.access_key_secret:
                errors.append(
                    FieldError(
                        f"{dprefix}.accessKeySecret",
                        f"is required for provider {dest.provider!r} "
                        "(or set RECFW_ACCESS_KEY_SECRET)",
                    )
                )
        if dest.bucket:
            errors += _sink_problems(sink, _as_destination(dest), plugins, dprefix)
    from ..netguard import destination_errors  # SSRF: endpointUrl must be public or allowed

    errors += destination_errors(dest, dprefix, errors)
    return errors


def _as_destination(dest: DestinationOverride | Destination) -> Destination:
    """What a sink's ``validate`` receives: the destination as a sink sees it."""
    if isinstance(dest, Destination):
        return dest
    return Destination(
        provider=dest.provider or "",
        bucket=dest.bucket or "",
        access_key_id=dest.access_key_id,
        access_key_secret=dest.access_key_secret,
        file_format=dest.file_format or "",
        region=dest.region,
        endpoint_url=dest.endpoint_url,
    )


def _plugin_of(plugins: PluginRegistry, kind: str, item_name: str) -> str:
    """`` (plugin 'x')`` when the item came from a plugin of another name, else ``""``."""
    owner = plugins.provided_by(kind, item_name)
    return f" (plugin {owner!r})" if owner and owner != item_name else ""


def _sink_problems(
    sink: Sink, dest: Destination, plugins: PluginRegistry, dprefix: str
) -> list[FieldError]:
    """The sink's own checks, under the destination's field names.

    A sink whose ``validate`` raises (or answers something other than field
    errors) is a broken plugin: that becomes one error on ``provider`` naming
    the plugin and what went wrong, instead of an exception in every command.
    """
    try:
        found = list(sink.validate(dest))
        bad = next((e for e in found if not isinstance(e, FieldError)), None)
        if bad is not None:
            raise TypeError(f"validate() answered {type(bad).__name__}, not FieldError")
    except Exception as exc:  # a plugin's bug must not crash every command
        plugin = _plugin_of(plugins, "sinks", dest.provider)
        return [
            FieldError(
                f"{dprefix}.provider",
                f"the {dest.provider!r} sink{plugin} failed to check the destination: "
                f"{describe(exc)}",
            )
        ]
    errors = []
    for error in found:
        field_name = error.field if error.field.startswith(dprefix) else f"{dprefix}.{error.field}"
        errors.append(FieldError(field_name, error.message))
    return errors


def _scrub(errors: list[FieldError], secret: Secret | None) -> list[FieldError]:
    """Mask the secret and URL credentials in messages that quote a value (a sink's, ...)."""
    out = []
    for e in errors:
        message = mask_secrets(e.message, secret)
        out.append(e if message == e.message else FieldError(e.field, message))
    return out


def validate_encoder_options(
    file_format: str | None,
    options: Mapping[str, Any] | None,
    plugins: PluginRegistry,
    prefix: str = "encoder",
) -> list[FieldError]:
    """Every problem of the ``[encoder]`` options for ``file_format``, each naming its field.

    Asks the format's encoder through its ``validate_options(options)`` (a list
    of :class:`FieldError` named by option, e.g. ``"crf"``, reported as
    ``encoder.crf``; :class:`recfw.testing.contracts.EncoderContract` requires
    it). An encoder without it is not checked here (its ``open`` still rejects
    bad options); an unknown or unset ``file_format`` gives nothing
    (:func:`validate` reports it as ``recording.destination.fileFormat``). An
    encoder whose check raises gives one error on ``prefix`` naming the format
    and its plugin.
    """
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        return [FieldError(prefix, "must be a table of encoder options")]
    if not file_format:
        return []
    try:
        encoder = plugins.encoder(file_format)
    except PluginError:
        return []
    check = getattr(encoder, "validate_options", None)
    if not callable(check):
        return []  # not checked here; its ``open`` still rejects bad options
    try:
        found = list(check(options))
        bad = next((e for e in found if not isinstance(e, FieldError)), None)
        if bad is not None:
            raise TypeError(f"validate_options() answered {type(bad).__name__}, not FieldError")
    except Exception as exc:  # a plugin's bug is reported, not raised
        plugin = _plugin_of(plugins, "encoders", file_format)
        return _scrub(
            [
                FieldError(
                    prefix,
                    f"the {file_format!r} encoder{plugin} failed to check its options: "
                    f"{describe(exc)}",
                )
            ],
            None,
        )
    errors = []
    for error in found:
        name = error.field
        if not (name == prefix or name.startswith(f"{prefix}.")):
            name = f"{prefix}.{name}" if name else prefix
        errors.append(FieldError(name, error.message))
    return _scrub(errors, None)


__all__ = ["validate", "validate_encoder_options"]
