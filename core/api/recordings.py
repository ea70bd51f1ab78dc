"""``/v1/recordings``: list, get, access links and deletion (Whereby's paths and shapes).

Recordings are rows written as they happen (:class:`recfw.control.RecordingStore`);
this module only reads them, and reaches the customer's storage through the
recording's own destination and its sink's optional capabilities
(:mod:`recfw.storage`): an access link (a presigned URL for S3; for files on
this machine a signed, expiring download URL served by recfw, see
:mod:`recfw.api.links`) and deletion. A sink without the capability answers 403.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import math
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..control import RecordingStore
from ..errors import FieldError, PluginError, SettingsError, StorageError
from ..recording import DESTINATION_FIELDS, Destination
from ..settings import parse_recording
from ..storage import CapabilityUnavailable, DeletingSink, LinkingSink, LocalFileSink
from ..times import iso_utc
from . import links
from .query import int_param, limit_param
from .responses import error, invalid, no_content, ok

if TYPE_CHECKING:
    from ..control.models import Recording
    from .plane import RoomPlane

log = logging.getLogger(__name__)

#: ``validForSeconds``: Whereby's default and bounds.
LINK_DEFAULT, LINK_MIN, LINK_MAX = 3600, 1, 43200
#: Most ids one bulk-delete takes.
MAX_BULK = 1000
MB = 1_000_000


class Refused(Exception):
    """A request the API answers with ``status`` and ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def describe(row: Recording) -> dict[str, Any]:
    """Whereby's ``Recording`` plus recfw's own fields (status, room, meeting, where it is)."""
    size = row.size_bytes
    return {
        "recordingId": row.recording_id,
        "roomSessionId": row.room_session_id,
        "filename": row.filename,
        "startDate": iso_utc(row.start_date),
        "endDate": iso_utc(row.end_date) if row.end_date else None,
        "sizeInMegaBytes": round(size / MB, 3) if size is not None else None,
        "roomName": f"/{row.room_name}",
        "meetingId": row.meeting_id,
        "status": row.status,
        "fileFormat": row.file_format,
        "durationInSeconds": row.duration_s,
        "sizeInBytes": size,
        "location": row.location,
        "reason": row.reason,
    }


class RecordingsApi:
    """The handlers of ``/v1/recordings`` and of the download route."""

    def __init__(self, plane: RoomPlane):
        self.plane = plane
        self.store = RecordingStore()
        self._jobs: set[asyncio.Task] = set()

    # --- reading ----------------------------------------------------------------------

    async def list(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            limit = limit_param(query)
            page = await asyncio.to_thread(
                self._list,
                query.get("roomName") or None,
                query.get("cursor") or None,
                limit,
                query.get("sortBy") or None,
            )
        except SettingsError as exc:
            return invalid(exc.errors)
        return ok({"results": [describe(r) for r in page.items], "cursor": page.next_cursor})

    def _list(self, room: str | None, cursor: str | None, limit: int, sort_by: str | None):
        with self.plane.control_db().session(readonly=True) as s:
            return self.store.list(s, room_name=room, cursor=cursor, limit=limit, sort_by=sort_by)

    def _row(self, recording_id: str, deleted: bool = False) -> Recording | None:
        with self.plane.control_db().session(readonly=True) as s:
            return self.store.get(s, recording_id, deleted=deleted)

    async def get(self, request: web.Request) -> web.Response:
        row = await asyncio.to_thread(self._row, request.match_info["recordingId"])
        if row is None:
            return error(404, "no such recording")
        return ok(describe(row))

    # --- where it is stored ---------------------------------------------------------------

    def _sink_and_destination(self, row: Recording) -> tuple[Any, Destination]:
        data = row.destination_revealed() or {}
        # Only the REST fields: a row may carry recfw's own marks besides them.
        data = {k: v for k, v in data.items() if k in DESTINATION_FIELDS}
        try:
            asked = parse_recording({"destination": data}).destination
        except SettingsError:
            asked = None
        if asked is None or not asked.provider:
            raise Refused(409, "the recording's destination is not known")
        destination = Destination(
            **{f.name: getattr(asked, f.name) for f in fields(Destination)}
            | {"bucket": asked.bucket or "", "file_format": asked.file_format or ""}
        )
        try:
            sink = self.plane.plugins.sink(destination.provider)
        except PluginError:
            raise Refused(
                403, f"the storage provider {destination.provider!r} is not installed here"
            ) from None
        return sink, destination

    @staticmethod
    def _stored(row: Recording) -> str:
        if row.status != "stored" or not row.location:
            raise Refused(
                409,
                f"the recording is not in storage (status {row.status!r}"
                + (f": {row.reason}" if row.reason else "")
                + ")",
            )
        return row.location

    # --- GET /v1/recordings/{id}/access-link -------------------------------------------

    async def access_link(self, request: web.Request) -> web.Response:
        try:
            valid = int_param(request.query, "validForSeconds", LINK_DEFAULT, LINK_MIN, LINK_MAX)
        except SettingsError as exc:
            return invalid(exc.errors)
        row = await asyncio.to_thread(self._row, request.match_info["recordingId"])
        if row is None:
            return error(404, "no such recording")
        try:
            link = await self.make_access_link(row, valid)
        except Refused as exc:
            return error(exc.status, exc.message)
        now = self.plane.clock().timestamp()
        return ok({"accessLink": link, "expires": int((now + valid) * 1000)})

    async def make_access_link(self, row: Recording, valid: int) -> str:
        """A link to a stored recording, valid ``valid`` seconds; :class:`Refused` says why not.

        The storage's own link when its sink can make one, else a signed download link of
        this server for a sink that keeps files locally. The dashboard calls this too.
        """
        location = self._stored(row)
        sink, destination = self._sink_and_destination(row)
        if isinstance(sink, LinkingSink):
            try:
                return await asyncio.to_thread(sink.access_link, location, destination, valid)
            except CapabilityUnavailable:
                pass  # maybe a local file instead
            except StorageError as exc:
                raise Refused(502, f"the storage could not make a link: {exc}") from None
        if isinstance(sink, LocalFileSink):
            try:
                await asyncio.to_thread(sink.local_file, location, destination)
            except CapabilityUnavailable:
                pass
            except StorageError as exc:
                raise Refused(409, f"the recording's file cannot be served: {exc}") from None
            else:
                expires = math.ceil(self.plane.clock().timestamp() + valid)
                path = links.download_path(
                    self.plane.link_key, row.recording_id, row.filename, expires
                )
                return self.plane.public_base() + path
        raise Refused(
            403, f"the {destination.provider!r} storage cannot give access links to a recording"
        )

    # --- GET /downloads/{id}/{filename} (no API key: the link is signed) -----------------

    async def download(self, request: web.Request) -> web.StreamResponse:
        recording_id = request.match_info["recordingId"]
        refusal = links.verify(
            self.plane.link_key,
            recording_id,
            request.query.get("expires"),
            request.query.get("signature"),
            self.plane.clock().timestamp(),
        )
        if refusal is not None:
            return error(403, refusal)
        row = await asyncio.to_thread(self._row, recording_id)
        if row is None:
            return error(404, "no such recording (it may have been deleted)")
        try:
            location = self._stored(row)
            sink, destination = self._sink_and_destination(row)
            if not isinstance(sink, LocalFileSink):
                raise Refused(403, "this recording is not stored on this machine")
            path: Path = await asyncio.to_thread(sink.local_file, location, destination)
        except Refused as exc:
            return error(exc.status, exc.message)
        except StorageError as exc:
            return error(404, f"the recording's file is not there: {exc}")
        safe = row.filename.replace('"', "")
        return web.FileResponse(
            path,
            headers={
                "Content-Disposition": f'attachment; filename="{safe}"',
                "Cache-Control": "private, no-store",
            },
        )

    # --- DELETE /v1/recordings/{id}, POST /v1/recordings/bulk-delete -----------------------

    async def delete(self, request: web.Request) -> web.Response:
        try:
            await self.remove(request.match_info["recordingId"])
        except Refused as exc:
            return error(exc.status, exc.message)
        return no_content()

    async def remove(self, recording_id: str) -> bool:
        """Delete a recording from the customer's storage, then mark its row deleted:
        ``True`` if it was deleted now, ``False`` if it was unknown or deleted before."""
        row = await asyncio.to_thread(self._row, recording_id, True)
        if row is None or row.deleted_at is not None:
            return False
        if row.status == "stored":
            sink, destination = self._sink_and_destination(row)
            if not isinstance(sink, DeletingSink):
                raise Refused(
                    403,
                    f"the {destination.provider!r} storage cannot delete recordings through "
                    "recfw: delete the file there yourself",
                )
            try:
                await asyncio.to_thread(sink.delete, self._stored(row), destination)
            except StorageError as exc:
                raise Refused(502, f"the storage could not delete the recording: {exc}") from None
        elif row.status == "failed" and not (row.spool_path and Path(row.spool_path).exists()):
            pass  # nothing of it is anywhere: only the row goes
        else:
            where = f" (kept at {row.spool_path})" if row.spool_path else ""
            raise Refused(
                409,
                f"the recording is {row.status!r}{where}: it is not in storage yet; "
                "delete it once it is stored",
            )
        await asyncio.to_thread(self._mark_deleted, recording_id)
        log.info("recording %s deleted (%s)", recording_id, row.location or row.status)
        return True

    def _mark_deleted(self, recording_id: str) -> None:
        with self.plane.control_db().session() as s:
            self.store.delete(s, recording_id, self.plane.clock())

    async def bulk_delete(self, request: web.Request) -> web.Response:
        from ..server.meetings import parse_body

        try:
            body = parse_body(await request.read())
            ids = _recording_ids(body)
        except SettingsError as exc:
            return invalid(exc.errors)
        task = asyncio.get_running_loop().create_task(self._remove_all(ids))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return no_content()

    async def _remove_all(self, ids: builtins.list[str]) -> None:
        for recording_id in dict.fromkeys(ids):
            try:
                await self.remove(recording_id)
            except Refused as exc:
                log.warning("bulk delete: recording %s not deleted: %s", recording_id, exc.message)
            except Exception:
                log.exception("bulk delete: recording %s not deleted", recording_id)

    async def idle(self) -> None:
        """Wait until every scheduled bulk deletion has run."""
        while self._jobs:
            await asyncio.gather(*list(self._jobs), return_exceptions=True)


def _recording_ids(body: Any) -> list[str]:
    if not isinstance(body, dict):
        raise SettingsError([FieldError("body", "must be a JSON object")])
    errors = [
        FieldError(str(k), "unknown field (known: recordingIds)")
        for k in body
        if k != "recordingIds"
    ]
    ids = body.get("recordingIds")
    if ids is None:
        errors.append(FieldError("recordingIds", "is required (a list of recording ids)"))
    elif not isinstance(ids, list):
        errors.append(FieldError("recordingIds", "must be a list of recording ids"))
    elif len(ids) > MAX_BULK:
        errors.append(FieldError("recordingIds", f"at most {MAX_BULK} ids at once"))
    else:
        errors += [
            FieldError(f"recordingIds[{i}]", "must be a string")
            for i, v in enumerate(ids)
            if not isinstance(v, str)
        ]
    if errors:
        raise SettingsError(errors)
    return [str(v) for v in ids or ()]


__all__ = ["RecordingsApi", "describe"]
