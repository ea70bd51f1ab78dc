"""Configure → Recording: the organization's recording defaults, and Test connection.

Saved defaults go to the database (:class:`recfw.control.OrgSettingsStore`,
which then wins over the config file's ``[recording]``) and to the running
server, so every meeting created afterwards starts from them. The access
secret is write-only: the page says whether one is set; an empty field keeps it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..control import OrgSettingsStore
from ..errors import FieldError, PluginError, SettingsError, StorageError
from ..settings import effective, parse_recording
from ..storage import DeletingSink, ProbingSink

if TYPE_CHECKING:
    from .app import Frame, RoomServer
    from .sessions import Login

log = logging.getLogger(__name__)

#: startTrigger -> (dashboard label, one-line explanation).
TRIGGERS = {
    "automatic": ("Auto-start (1 person)", "Recording starts when the first person joins."),
    "automatic-2nd-participant": (
        "Auto-start (2 people)",
        "Recording starts when a second person joins.",
    ),
    "prompt": ("Prompt host", "The host is asked to start recording when they join."),
    "none": ("Manual", "A host starts and stops the recording with the Record button."),
}


def trigger_choices(plugins: Any) -> dict[str, tuple[str, str]]:
    """The installed start triggers: ``name -> (label, one-line explanation)``, the four
    built-in ones first."""
    names = [n for n in TRIGGERS if n in plugins.trigger_names()]
    names += [n for n in plugins.trigger_names() if n not in TRIGGERS]
    out = {}
    for name in names:
        trigger = plugins.trigger(name)
        label = getattr(trigger, "label", None) or TRIGGERS.get(name, (name, ""))[0]
        doc = (type(trigger).__doc__ or "").strip().splitlines()
        out[name] = (label, TRIGGERS[name][1] if name in TRIGGERS else (doc[0] if doc else ""))
    return out


TEXT_FIELDS = ("bucket", "accessKeyId", "region", "endpointUrl", "oidcRoleArn")
AUTH_TYPES = {"accessKey": "Access key", "roleBased": "Role (IAM role ARN)"}


def apply_defaults(server: RoomServer, recording: dict[str, Any]) -> None:
    """Make ``recording`` (REST shape, with secrets) the running server's defaults."""
    override = parse_recording(recording)
    settings = effective(override, None, server.plugins)
    server.defaults = override
    server.settings = settings
    control = getattr(server, "control", None)
    if control is not None:
        control.default_destination = settings.destination


def load_stored_defaults(server: RoomServer) -> None:
    """At start: defaults edited through the dashboard/API win over the config file's."""
    if server.db is None:
        return
    store = OrgSettingsStore()
    with server.db.session(readonly=True) as s:
        row = s.get(store_row_type(), 1)
        if row is None or not store.edited(row):
            return
        recording = row.recording_revealed()
    if recording:
        try:
            apply_defaults(server, recording)
        except SettingsError as exc:
            log.warning("the stored organization defaults are not valid here: %s", exc)


def store_row_type():
    from ..control.models import OrgSettings

    return OrgSettings


class ConfigurePage:
    """``/dashboard/configure``: the form, Save and Test connection."""

    def __init__(self, frame: Frame):
        self.frame = frame
        self.server = frame.server
        self.store = OrgSettingsStore()

    # --- reading -----------------------------------------------------------------------

    def _current(self) -> tuple[dict[str, Any], bool]:
        """``(recording object with secrets, stored in the database?)``."""
        with self.server.control_db().session(readonly=True) as s:
            row = s.get(store_row_type(), 1)
            stored = row.recording_revealed() if row is not None else None
        if stored:
            return stored, True
        return self.server.defaults.to_dict(reveal=True), False

    def _values(self, recording: dict[str, Any]) -> dict[str, str]:
        dest = recording.get("destination") or {}
        values = {k: str(dest.get(k) or "") for k in TEXT_FIELDS}
        values["provider"] = str(dest.get("provider") or "")
        values["fileFormat"] = str(dest.get("fileFormat") or "")
        values["authenticationType"] = str(dest.get("authenticationType") or "accessKey")
        values["startTrigger"] = str(recording.get("startTrigger") or "automatic")
        return values

    def _page(
        self,
        request: web.Request,
        login: Login,
        values: dict[str, str],
        secret_set: bool,
        *,
        status: int = 200,
        errors: list[FieldError] | None = None,
        notice: str = "",
        test: dict[str, Any] | None = None,
        typed: bool = False,
    ) -> web.Response:
        plugins = self.server.plugins
        return self.frame.render(
            request,
            "configure.html",
            login,
            http_status=status,
            values=values,
            secret_set=secret_set,
            typed=typed,
            providers=plugins.sink_names(),
            formats=plugins.encoder_names(),
            triggers=trigger_choices(plugins),
            auth_types=AUTH_TYPES,
            errors=errors or [],
            error_fields={_short(e.field) for e in errors or []},
            notice=notice,
            test=test,
        )

    async def get(self, request: web.Request, login: Login) -> web.StreamResponse:
        recording, _ = await asyncio.to_thread(self._current)
        values = self._values(recording)
        secret = (recording.get("destination") or {}).get("accessKeySecret")
        notice = (
            "Saved. Meetings created from now on use these defaults."
            if (request.query.get("saved"))
            else ""
        )
        return self._page(request, login, values, bool(secret), notice=notice)

    # --- the form ----------------------------------------------------------------------

    async def _submitted(self, request: web.Request) -> tuple[dict[str, str], dict[str, Any], bool]:
        """``(form values, recording object with secrets, secret set?)``; an empty secret
        field keeps the stored secret."""
        form = await request.post()
        values = {k: str(form.get(k, "")).strip() for k in TEXT_FIELDS}
        for k in ("provider", "fileFormat", "authenticationType", "startTrigger"):
            values[k] = str(form.get(k, "")).strip()
        new_secret = str(form.get("accessKeySecret", ""))
        current, _ = await asyncio.to_thread(self._current)
        old_dest = current.get("destination") or {}
        secret = new_secret or old_dest.get("accessKeySecret")
        destination: dict[str, Any] = {"provider": values["provider"] or None}
        for k in TEXT_FIELDS:
            destination[k] = values[k] or None
        destination["fileFormat"] = values["fileFormat"] or None
        role = values["authenticationType"] == "roleBased"
        destination["authenticationType"] = "roleBased" if role else None
        if role:
            destination["accessKeyId"] = None
            secret = None
        else:
            destination["oidcRoleArn"] = None
        destination["accessKeySecret"] = secret or None
        if not _needs_credentials(self.server.plugins, values["provider"]):
            for k in ("accessKeyId", "accessKeySecret", "authenticationType", "oidcRoleArn"):
                destination[k] = None
            secret = None
        recording = {
            "type": "local" if values["provider"] == "local" else "cloud",
            "destination": {k: v for k, v in destination.items() if v is not None},
            "startTrigger": values["startTrigger"] or None,
        }
        if current.get("maxDuration"):
            recording["maxDuration"] = current["maxDuration"]
        stored = bool(old_dest.get("accessKeySecret")) and _needs_credentials(
            self.server.plugins, values["provider"]
        )
        return values, recording, stored

    async def save(self, request: web.Request, login: Login) -> web.StreamResponse:
        values, recording, secret_set = await self._submitted(request)
        typed = bool((await request.post()).get("accessKeySecret"))
        try:
            await asyncio.to_thread(self._save, recording)
        except SettingsError as exc:
            return self._page(
                request,
                login,
                values,
                secret_set,
                status=400,
                errors=list(exc.errors),
                typed=typed,
            )
        log.info("dashboard: recording defaults saved by key %s", login.key_id)
        raise web.HTTPSeeOther(f"{self.frame.env.globals['PREFIX']}/configure?saved=1")

    def _save(self, recording: dict[str, Any]) -> None:
        effective(parse_recording(recording), None, self.server.plugins)  # every problem first
        with self.server.control_db().session() as s:
            self.store.replace(s, recording)
        apply_defaults(self.server, recording)

    async def test(self, request: web.Request, login: Login) -> web.StreamResponse:
        values, recording, secret_set = await self._submitted(request)
        typed = bool((await request.post()).get("accessKeySecret"))
        try:
            settings = effective(parse_recording(recording), None, self.server.plugins)
        except SettingsError as exc:
            return self._page(
                request,
                login,
                values,
                secret_set,
                status=400,
                errors=list(exc.errors),
                typed=typed,
            )
        result = await asyncio.to_thread(probe, self.server.plugins, settings.destination)
        return self._page(request, login, values, secret_set, test=result, typed=typed)


def probe(plugins: Any, destination: Any) -> dict[str, Any]:
    """Write, read back and delete a probe object through the destination's sink:
    ``{"ok": bool, "message": str}`` (the message names the problem)."""
    try:
        sink = plugins.sink(destination.provider)
    except PluginError as exc:
        return {"ok": False, "message": str(exc)}
    try:
        if isinstance(sink, ProbingSink):
            where = sink.probe(destination)
            return {
                "ok": True,
                "message": f"Connection works: a test object was written to {where}, "
                "read back and deleted.",
            }
        return _store_and_delete(sink, destination)
    except StorageError as exc:
        return {"ok": False, "message": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a plugin's bug: say so, never a 500
        log.exception("Test connection: the %s sink failed", destination.provider)
        return {"ok": False, "message": f"the {destination.provider} storage failed: {exc}"}


def _store_and_delete(sink: Any, destination: Any) -> dict[str, Any]:
    """For sinks without ``probe``: store a small file, then delete it if the sink can."""
    import tempfile
    import uuid
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "probe.txt"
        path.write_bytes(b"recfw connection test")
        stored = sink.store(path, f".recfw-probe-{uuid.uuid4().hex}.txt", destination, None)
    if isinstance(sink, DeletingSink):
        sink.delete(stored.location, destination)
        return {
            "ok": True,
            "message": f"Connection works: a test object was written to {stored.location} and "
            "deleted (this storage cannot read it back through recfw).",
        }
    return {
        "ok": True,
        "message": f"Connection works: a test object was written to {stored.location}; this "
        "storage cannot delete through recfw: remove it yourself.",
    }


def _needs_credentials(plugins: Any, provider: str) -> bool:
    try:
        return bool(getattr(plugins.sink(provider), "needs_credentials", True))
    except PluginError:
        return True


def _short(field: str) -> str:
    """``recording.destination.bucket`` -> ``bucket`` (the form field's name)."""
    return field.rsplit(".", 1)[-1]


__all__ = [
    "ConfigurePage",
    "TRIGGERS",
    "trigger_choices",
    "apply_defaults",
    "load_stored_defaults",
    "probe",
]
