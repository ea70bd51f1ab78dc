"""A request built from Whereby's schema for each path gets a 2xx, and its answer
validates against Whereby's response schema (tests/api/whereby.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import aiohttp
import whereby_schemas as whereby
from api_helpers import add_recording, call, local_file
from jsonschema import Draft202012Validator
from recfw.times import iso_utc


def valid(schema: dict, instance: object) -> None:
    """Raise if ``instance`` does not fit ``schema`` (date-times checked too)."""
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
        instance
    )


def whereby_body(clock, **extra) -> dict:
    """A create-meeting body using every field of Whereby's request schema."""
    body = {
        "endDate": iso_utc(clock.now + timedelta(hours=2)),
        "startDate": iso_utc(clock.now),
        "isLocked": True,
        "roomMode": "group",
        "roomNamePrefix": "Customer0348-",
        "roomNamePattern": "uuid",
        "recording": {
            "type": "cloud",
            "destination": {
                "provider": "s3",
                "authenticationType": "accessKey",
                "bucket": "customer-recordings/meetings",
                "accessKeyId": "AKIAEXAMPLEKEY12345",
                "accessKeySecret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "fileFormat": "mp4",
            },
            "startTrigger": "prompt",
        },
        "liveTranscription": {"destination": {"provider": "whereby"}, "startTrigger": "none"},
        "streaming": {
            "destination": {"url": "rtmp://a.rtmp.example.com/live2/stream-key-123"},
            "startTrigger": "none",
        },
        "fields": ["hostRoomUrl"],
        **extra,
    }
    valid(whereby.CREATE_MEETING_REQUEST, body)
    return body


async def test_meetings_paths(api_server, clock):
    server = await api_server()
    base = server.base_url + "/v1"
    body = whereby_body(clock)

    created = await call("POST", base + "/meetings", body=body)
    assert created.status == 201, created.body
    valid(whereby.MEETING, created.body)
    name = created.body["roomName"]
    assert name.startswith("/customer0348-") and uuid.UUID(name[len("/customer0348-") :])
    assert created.body["roomUrl"] == server.base_url + name
    assert created.body["hostRoomUrl"].startswith(created.body["roomUrl"] + "?roomKey=")
    assert created.body["endDate"] == body["endDate"]
    for secret in ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "stream-key-123"):
        assert secret not in created.text
    meeting_url = f"{base}/meetings/{created.body['meetingId']}"

    listed = await call("GET", base + "/meetings?limit=10&fields=hostRoomUrl")
    assert listed.status == 200, listed.body
    valid(whereby.MEETINGS_PAGE, listed.body)
    assert [m["meetingId"] for m in listed.body["results"]] == [created.body["meetingId"]]
    assert listed.body["results"][0]["hostRoomUrl"] == created.body["hostRoomUrl"]
    assert listed.body["cursor"] is None

    fetched = await call("GET", meeting_url)
    assert fetched.status == 200
    valid(whereby.MEETING, fetched.body)
    assert "hostRoomUrl" not in fetched.body  # only when asked for
    assert fetched.body["roomMode"] == "group" and fetched.body["isLocked"] is True

    for _ in range(2):  # idempotent
        deleted = await call("DELETE", meeting_url)
        assert deleted.status == 204 and deleted.text == ""
    assert (await call("GET", meeting_url)).status == 404


async def test_a_minimal_body_and_the_other_patterns(api_server, clock):
    server = await api_server()
    base = server.base_url + "/v1/meetings"
    minimal = {"endDate": iso_utc(clock.now + timedelta(minutes=30))}
    valid(whereby.CREATE_MEETING_REQUEST, minimal)
    answer = await call("POST", base, body=minimal)
    assert answer.status == 201, answer.body
    valid(whereby.MEETING, answer.body)
    assert uuid.UUID(answer.body["roomName"][1:]).version == 4
    assert "hostRoomUrl" not in answer.body

    short = {**minimal, "roomNamePattern": "human-short", "roomNamePrefix": ""}
    answer = await call("POST", base, body=short)
    assert answer.status == 201, answer.body
    assert len(answer.body["roomName"]) == 1 + 11  # "/" + xxxxx-xxxxx

    viewer = {**minimal, "templateType": "viewerMode", "fields": ["viewerRoomUrl"]}
    answer = await call("POST", base, body=viewer)
    assert answer.status == 201, answer.body
    assert answer.body["roomMode"] == "group" and answer.body["isLocked"] is True

    # Whereby-hosted storage, role-based S3: accepted (and stored) as documented.
    hosted = {
        **minimal,
        "recording": {
            "type": "cloud",
            "destination": {"provider": "whereby", "fileFormat": "mp4"},
            "startTrigger": "automatic",
        },
    }
    valid(whereby.CREATE_MEETING_REQUEST, hosted)
    answer = await call("POST", base, body=hosted)
    assert answer.status == 201, answer.body
    assert answer.body["recording"]["destination"]["provider"] == "local"  # the org default
    assert answer.body["recording"]["destination"]["fileFormat"] == "mp4"
    role = {
        **minimal,
        "recording": {
            "type": "cloud",
            "destination": {
                "provider": "s3",
                "authenticationType": "roleBased",
                "bucket": "customer-recordings",
                "oidcRoleArn": "arn:aws:iam::123456789012:role/recfw-recorder",
            },
            "startTrigger": "automatic",
        },
    }
    valid(whereby.CREATE_MEETING_REQUEST, role)
    answer = await call("POST", base, body=role)
    assert answer.status == 201, answer.body
    dest = answer.body["recording"]["destination"]
    assert dest["authenticationType"] == "roleBased" and "accessKeyId" not in dest
    assert dest["oidcRoleArn"] == "arn:aws:iam::123456789012:role/recfw-recorder"


async def test_recordings_paths(api_server, control_db, tmp_path):
    server = await api_server()
    base = server.base_url + "/v1"
    folder = Path("recordings")
    data = b"a recording's bytes" * 100
    name = "standup-2026-11-30T10:00:00Z.mkv"
    stored = add_recording(
        control_db,
        destination={"provider": "local", "bucket": "recordings", "fileFormat": "mkv"},
        location=local_file(folder, name, data),
        filename=name,
        size_bytes=len(data),
    )
    other = add_recording(control_db, room="other", status="failed", reason="disk full")

    listed = await call("GET", base + "/recordings?roomName=/standup&limit=5&sortBy=startDate:desc")
    assert listed.status == 200, listed.body
    valid(whereby.RECORDINGS_PAGE, listed.body)
    assert [r["recordingId"] for r in listed.body["results"]] == [stored]

    fetched = await call("GET", f"{base}/recordings/{stored}")
    assert fetched.status == 200
    valid(whereby.RECORDING, fetched.body)
    assert fetched.body["filename"] == name and fetched.body["status"] == "stored"

    link = await call("GET", f"{base}/recordings/{stored}/access-link?validForSeconds=600")
    assert link.status == 200, link.body
    valid(whereby.ACCESS_LINK, link.body)
    async with aiohttp.ClientSession() as http, http.get(link.body["accessLink"]) as got:
        assert got.status == 200 and await got.read() == data

    bulk = {"recordingIds": [other, "never-existed"]}
    valid(whereby.BULK_DELETE_REQUEST, bulk)
    answer = await call("POST", base + "/recordings/bulk-delete", body=bulk)
    assert answer.status == 204
    await server.api.idle()
    assert (await call("GET", f"{base}/recordings/{other}")).status == 404

    for _ in range(2):  # idempotent
        deleted = await call("DELETE", f"{base}/recordings/{stored}")
        assert deleted.status == 204, deleted.body
    assert not (folder / name).exists()
    assert (await call("GET", f"{base}/recordings/{stored}")).status == 404
