"""Helpers of the REST API tests: the config, an HTTP call, a virtual clock, rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from recfw.config import parse_config
from recfw.control import RecordingStore

API_KEY = "api-test-bootstrap-key-0123456789"
HOST_SECRET = "api-test-host-secret"


class Clock:
    """A virtual clock: tests move it, nothing sleeps."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def api_config(trigger: str = "none", folder: str = "recordings", **server):
    return parse_config(
        {
            "recording": {
                "type": "local",
                "startTrigger": trigger,
                "destination": {"provider": "local", "bucket": folder, "fileFormat": "mkv"},
            },
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "iceAddresses": ["127.0.0.1"],
                "apiKey": API_KEY,
                "apiRateLimit": 0,
                **server,
            },
        },
        environ={},
    )


@dataclass
class Response:
    status: int
    body: object
    text: str
    headers: object


async def call(method: str, url: str, *, body=None, data=None, key: str | None = API_KEY):
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, json=body, data=data, headers=headers) as response,
    ):
        text = await response.text()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return Response(response.status, parsed, text, response.headers)


def add_recording(db, *, room="standup", status="stored", destination=None, **facts):
    """A recordings row made directly (as the engine's events would make it)."""
    store = RecordingStore()
    with db.session() as s:
        row = store.create(
            s,
            room_name=room,
            filename=facts.pop("filename", f"{room}-2026-11-30T10:00:00Z.mkv"),
            destination=destination,
            room_session_id=facts.pop("room_session_id", "session-1"),
            file_format=facts.pop("file_format", "mkv"),
            start_date=facts.pop("start_date", None),
            meeting_id=facts.pop("meeting_id", None),
            spool_path=facts.pop("spool_path", None),
        )
        if status != "recording":
            store.update(
                s,
                row,
                status=status,
                end_date=facts.pop("end_date", datetime.now(UTC)),
                size_bytes=facts.pop("size_bytes", 1_500_000),
                duration_s=facts.pop("duration_s", 12.5),
                location=facts.pop("location", None),
                reason=facts.pop("reason", None),
            )
        return row.recording_id


def local_file(folder: Path, name: str, data: bytes) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return str(path.absolute())
