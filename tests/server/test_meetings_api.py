"""The meetings REST API of the room server: auth, validation, per-meeting settings, GET/DELETE.

(Whereby compatibility, persistence and meeting ends: tests/api/.)

Against a real server on 127.0.0.1 (aiohttp client), real headless WebRTC
participants, the local sink and a moto S3 server on loopback.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import av
import pytest
import recfw
from recfw.config import parse_config
from recfw.netguard import get_policy, set_policy
from recfw.rooms import Participant
from recfw.server.client import HeadlessParticipant

API_KEY = "test-api-key-7f3a9c0e51"
SECRET = "s3cr3t-value-that-must-never-leak"


def api_config(trigger: str, api_key: str | None = API_KEY, environ=None):
    server = {"host": "127.0.0.1", "port": 0, "iceAddresses": ["127.0.0.1"]}
    if api_key is not None:
        server["apiKey"] = api_key
    return parse_config(
        {
            "recording": {
                "type": "local",
                "startTrigger": trigger,
                "destination": {"provider": "local", "bucket": "recordings", "fileFormat": "mkv"},
            },
            "server": server,
        },
        environ=environ or {},
    )


def in_future(seconds: float = 3600) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def auth(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def call(method: str, url: str, *, body=None, data=None, headers=None):
    """``(status, parsed JSON or None, raw text)`` of one request."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, json=body, data=data, headers=headers) as response,
    ):
        text = await response.text()
        parsed = json.loads(text) if text else None
        return response.status, parsed, text, response.headers


async def meeting_count(server) -> int:
    status, page, _, _ = await call("GET", server.base_url + "/v1/meetings", headers=auth())
    assert status == 200, page
    return len(page["results"])


def _synthetic(builtin_plugins, pid: str):
    source = builtin_plugins.get("sources", "synthetic")
    options = {"width": 320, "height": 240, "fps": 15, "color": [200, 40, 40]}
    return source.create(Participant(id=pid, display_name=pid), options)


async def test_without_a_configured_key_the_api_answers_503(make_server):
    server = await make_server(config=api_config("none", api_key=None))
    for method, path in (("POST", "/v1/meetings"), ("GET", "/v1/meetings/x")):
        status, body, _, _ = await call(
            method, server.base_url + path, body={"endDate": in_future()}, headers=auth()
        )
        assert status == 503
        assert "RECFW_API_KEY" in body["error"] and "apiKey" in body["error"]
    assert server.db is None


async def test_a_wrong_or_missing_key_answers_401(make_server):
    server = await make_server(config=api_config("none"))
    url = server.base_url + "/v1/meetings"
    for headers in (
        None,
        auth("wrong"),
        auth(API_KEY + "x"),
        {"Authorization": API_KEY},
        {"Authorization": f"Basic {API_KEY}"},
    ):
        status, body, text, response_headers = await call(
            "POST", url, body={"endDate": in_future()}, headers=headers
        )
        assert status == 401, headers
        assert "Bearer" in body["error"] and API_KEY not in text
        assert response_headers["WWW-Authenticate"].startswith("Bearer")
    status, _, _, _ = await call("DELETE", url + "/nope", headers=auth("wrong"))
    assert status == 401
    assert await meeting_count(server) == 0


async def test_the_key_can_come_from_the_environment(make_server):
    config = api_config("none", api_key=None, environ={"RECFW_API_KEY": "from-the-env-123"})
    server = await make_server(config=config)
    url = server.base_url + "/v1/meetings"
    status, _, _, _ = await call("POST", url, body={"endDate": in_future()}, headers=auth())
    assert status == 401
    status, body, _, _ = await call(
        "POST", url, body={"endDate": in_future()}, headers=auth("from-the-env-123")
    )
    assert status == 201, body


S3_BAD_BUCKET = {
    "type": "cloud",
    "destination": {
        "provider": "s3",
        "bucket": "Bad_Bucket",
        "accessKeyId": "AKIAEXAMPLEKEY12345",
        "accessKeySecret": SECRET,
    },
}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            {"endDate": in_future(), "recording": {"startTrigger": "sometimes"}},
            {"recording.startTrigger"},
        ),
        (
            {"endDate": in_future(), "recording": {"destination": {"fileFormat": "avi"}}},
            {"recording.destination.fileFormat"},
        ),
        ({"endDate": in_future(), "recording": S3_BAD_BUCKET}, {"recording.destination.bucket"}),
        ({"recording": None}, {"endDate"}),
        ({"endDate": "2001-01-01T00:00:00Z"}, {"endDate"}),
        ({"endDate": "next tuesday"}, {"endDate"}),
        ({"endDate": in_future(), "colour": "red"}, {"colour"}),
        ({"endDate": in_future(), "recording": {"colour": "red"}}, {"recording.colour"}),
        ({"endDate": in_future(), "roomNamePrefix": "a b/c"}, {"roomNamePrefix"}),
        ({"endDate": in_future(), "roomMode": "huge"}, {"roomMode"}),
        ({"endDate": in_future(), "roomNamePattern": "words"}, {"roomNamePattern"}),
        ({"endDate": in_future(), "fields": ["secretUrl"]}, {"fields"}),
        ({"endDate": in_future(), "isLocked": "yes"}, {"isLocked"}),
        ({"endDate": in_future(), "templateType": "webinar"}, {"templateType"}),
        ({"endDate": in_future(), "streaming": "rtmp://x"}, {"streaming"}),
        (
            {
                "endDate": in_future(),
                "recording": {
                    "destination": {**S3_BAD_BUCKET["destination"], "bucket": "good-bucket"}
                    | {"authenticationType": "magic"}
                },
            },
            {"recording.destination.authenticationType"},
        ),
        ({"roomNamePrefix": 7, "recording": {"startTrigger": "x"}}, None),
        (b"{not json", {"body"}),
        ([1, 2], {"body"}),
    ],
)
async def test_invalid_requests_answer_400_naming_every_field(make_server, body, fields):
    server = await make_server(config=api_config("none"))
    url = server.base_url + "/v1/meetings"
    if isinstance(body, bytes):
        status, answer, text, _ = await call("POST", url, data=body, headers=auth())
    else:
        status, answer, text, _ = await call("POST", url, body=body, headers=auth())
    assert status == 400, answer
    assert answer["error"] == "invalid request"
    named = {f["field"] for f in answer["fields"]}
    if fields is None:  # several problems at once: every one is reported
        fields = {"roomNamePrefix", "endDate", "recording.startTrigger"}
    assert named == fields, answer
    assert all(f["message"] for f in answer["fields"])
    assert SECRET not in text and API_KEY not in text
    assert await meeting_count(server) == 0


async def test_a_meeting_records_with_its_own_destination_and_format(
    make_server, builtin_plugins, s3_server, s3_bucket
):
    # Organization default: automatic start, mkv to a local folder. The meeting: mp4 to S3.
    events: list[dict] = []

    class Listener:
        @staticmethod
        @recfw.hookimpl
        def recfw_on_event(event, config):
            events.append(event.to_dict())

    builtin_plugins.register(Listener, name="test-listener")
    server = await make_server(config=api_config("automatic"))
    dest = s3_server.destination(s3_bucket, "meetings", file_format="mp4", secret=None)
    override = {"type": "cloud", "destination": dest.to_dict(reveal=True)}
    url = server.base_url + "/v1/meetings"
    body = {
        "roomNamePrefix": "standup-",
        "endDate": in_future(),
        "recording": override,
        "fields": ["hostRoomUrl"],
    }
    status, created, text, _ = await call("POST", url, body=body, headers=auth())
    assert status == 201, created
    secret = dest.access_key_secret.reveal()
    assert secret not in text and API_KEY not in text and dest.access_key_id not in text

    name = created["roomName"]
    assert name.startswith("/standup-") and len(name) > len("/standup-") + 8
    assert created["roomUrl"] == server.base_url + name
    assert created["hostRoomUrl"].startswith(server.base_url + name + "?roomKey=")
    assert created["recording"]["startTrigger"] == "automatic"  # inherited
    assert created["recording"]["destination"]["fileFormat"] == "mp4"
    assert created["recording"]["destination"]["accessKeySecret"] == "********"
    assert datetime.fromisoformat(created["endDate"]) > datetime.now(UTC)

    status, fetched, text, _ = await call(
        "GET", f"{url}/{created['meetingId']}?fields=hostRoomUrl", headers=auth()
    )
    assert status == 200 and fetched == created and secret not in text
    assert name[1:] not in server.rooms  # rooms open on the first join

    # The automatic trigger (inherited) starts a recording when a person joins.
    async with HeadlessParticipant(created["roomUrl"], _synthetic(builtin_plugins, "a"), name="A"):
        engine = server.rooms[name[1:]].engine
        assert engine.meeting_id == created["meetingId"]
        assert engine.settings.destination.provider == "s3"
        await asyncio.sleep(2.5)
        assert engine.status == "started"
    # The last person left: the recording stops, then it is stored.
    for _ in range(100):
        if engine.status == "stopped":
            break
        await asyncio.sleep(0.1)
    await engine.wait_stored()
    (session,) = engine.sessions
    assert session.status == "stored", session.error
    types = [e["type"] for e in events]
    assert "room.client.joined" in types and "recording.finished" in types, types
    assert {e["data"]["meetingId"] for e in events} == {created["meetingId"]}
    assert secret not in json.dumps(events)
    keys = [
        o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket).get("Contents", [])
    ]
    assert len(keys) == 1 and keys[0].startswith(f"meetings/{name[1:]}-"), keys
    assert keys[0].endswith(".mp4")
    data = s3_server.client().get_object(Bucket=s3_bucket, Key=keys[0])["Body"].read()
    with av.open(io.BytesIO(data)) as container:
        assert "mp4" in container.format.name
        frames = sum(1 for _ in container.decode(video=0))
    assert frames > 15
    assert not Path("recordings").exists() or not list(Path("recordings").iterdir())


async def test_rooms_not_made_through_the_api_keep_the_default(make_server):
    server = await make_server(config=api_config("none"))
    body = {"endDate": in_future(), "recording": {"startTrigger": "prompt"}}
    status, created, _, _ = await call(
        "POST", server.base_url + "/v1/meetings", body=body, headers=auth()
    )
    assert status == 201, created
    triggers = {}
    async with aiohttp.ClientSession() as session:
        for room in (created["roomName"][1:], "adhoc"):
            async with session.ws_connect(f"{server.base_url}/{room}/ws") as ws:
                await ws.send_json({"type": "join", "name": "V"})
                welcome = await ws.receive_json(timeout=5)
                triggers[room] = welcome["trigger"]
    assert triggers == {created["roomName"][1:]: "prompt", "adhoc": "none"}
    assert server.settings.start_trigger == "none"


async def test_manual_trigger_override_then_delete_stores_the_recording(
    make_server, builtin_plugins
):
    # Organization default: automatic start. The meeting: manual ("none").
    server = await make_server(config=api_config("automatic"))
    url = server.base_url + "/v1/meetings"
    body = {
        "endDate": in_future(),
        "recording": {"startTrigger": "none"},
        "fields": ["hostRoomUrl"],
    }
    status, created, _, _ = await call("POST", url, body=body, headers=auth())
    assert status == 201, created
    assert uuid.UUID(created["roomName"][1:])  # no prefix: a UUID
    meeting = f"{url}/{created['meetingId']}"
    name = created["roomName"][1:]

    host = HeadlessParticipant(created["hostRoomUrl"], _synthetic(builtin_plugins, "h"), name="H")
    async with host:
        assert host.result.role == "host"
        engine = server.rooms[name].engine
        await asyncio.sleep(1.0)
        assert engine.status == "idle" and not engine.sessions  # the default would record
        await host.command("start_recording")
        await asyncio.sleep(2.0)
        status, _, text, _ = await call("DELETE", meeting, headers=auth())
        assert status == 204 and text == ""
        # DELETE answered after the recording was stopped and stored.
        (session,) = engine.sessions
        assert session.status == "stored", session.error
        await asyncio.sleep(0.3)
        assert "this meeting has been deleted" in host.result.errors
    path = Path(session.stored.location.removeprefix("file://"))
    assert path.name.startswith(f"{name}-") and path.suffix == ".mkv"
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) > 15

    assert name not in server.rooms
    status, answer, _, _ = await call("GET", meeting, headers=auth())
    assert status == 404 and answer["error"] == "no such meeting"
    status, answer, text, _ = await call("DELETE", meeting, headers=auth())
    assert status == 204 and text == ""  # idempotent
    async with (
        aiohttp.ClientSession() as session_,
        session_.ws_connect(f"{server.base_url}/{name}/ws") as ws,
    ):
        await ws.send_json({"type": "join", "name": "late"})
        refused = await ws.receive_json(timeout=5)
    assert refused == {
        "type": "error",
        "command": "join",
        "message": "this meeting has been deleted",
    }


def test_the_api_key_is_a_secret_in_the_config(tmp_path):
    from click.testing import CliRunner
    from recfw.cli import main
    from recfw.errors import SettingsError

    with pytest.raises(SettingsError) as info:
        parse_config({"server": {"apiKey": " "}}, environ={})
    assert [e.field for e in info.value.errors] == ["server.apiKey"]
    config = parse_config({"server": {"apiKey": API_KEY}}, environ={})
    assert config.server.api_key.reveal() == API_KEY and API_KEY not in repr(config)

    path = tmp_path / "recfw.toml"
    path.write_text(f'[server]\napiKey = "{API_KEY}"\n')
    # The command sets the process' destination policy from the file: put it back after,
    # or the session's loopback S3 server would be refused in later tests.
    previous = get_policy()
    try:
        result = CliRunner().invoke(
            main, ["settings", "check", str(path)], env={"RECFW_API_KEY": ""}
        )
    finally:
        set_policy(previous)
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and API_KEY not in result.output


@pytest.mark.parametrize(
    "destination",
    [
        {"provider": "local", "bucket": "/etc/recfw-owned"},
        {"bucket": "../../somewhere-else"},
        {"provider": "fsspec", "bucket": "file:///tmp/anywhere"},
    ],
)
async def test_a_meeting_cannot_choose_a_folder_on_this_machine(make_server, destination):
    server = await make_server(config=api_config("none"))
    body = {"endDate": in_future(), "recording": {"destination": destination}}
    status, answer, _, _ = await call(
        "POST", server.base_url + "/v1/meetings", body=body, headers=auth()
    )
    assert status == 400, answer
    assert "recording.destination.provider" in {f["field"] for f in answer["fields"]}
    assert await meeting_count(server) == 0


async def test_a_meeting_may_change_only_the_format_of_the_default_folder(make_server):
    server = await make_server(config=api_config("none"))
    body = {"endDate": in_future(), "recording": {"destination": {"fileFormat": "mp4"}}}
    status, answer, _, _ = await call(
        "POST", server.base_url + "/v1/meetings", body=body, headers=auth()
    )
    assert status == 201, answer
    assert answer["recording"]["destination"]["fileFormat"] == "mp4"
    assert answer["recording"]["destination"]["bucket"] == "recordings"
