"""The meetings API refuses a meeting whose S3 endpoint points inside the network: a 400
naming ``recording.destination.endpointUrl``, against a real server on loopback."""

from __future__ import annotations

import aiohttp
import pytest
from recfw.config import parse_config
from recfw.netguard import policy_scope, resolver_scope
from recfw.server import RoomServer
from recfw.server.ice import unrestrict_host_addresses

API_KEY = "netguard-test-api-key-0123"
SECRET = "endpoint-test-secret-value-42"

INTERNAL = [
    "http://169.254.169.254",
    "http://127.0.0.1:9000",
    "http://[::1]:9000",
    "http://0.0.0.0:9000",
    "http://metadata.google.internal",
    "http://10.0.0.8:9000",
    "http://[::ffff:169.254.169.254]",
    "http://s3.rebound.test",  # a name that resolves to a private address
]


@pytest.fixture
async def server(builtin_plugins, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = parse_config(
        {
            "recording": {
                "type": "local",
                "startTrigger": "none",
                "destination": {"provider": "local", "bucket": "recordings", "fileFormat": "mkv"},
            },
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "iceAddresses": ["127.0.0.1"],
                "apiKey": API_KEY,
            },
        },
        environ={},
    )
    room_server = RoomServer(config, builtin_plugins, spool_dir=tmp_path / "spool")
    await room_server.start()
    yield room_server
    await room_server.close()
    unrestrict_host_addresses()


def _body(endpoint: str) -> dict:
    return {
        "endDate": "2099-01-01T00:00:00Z",
        "recording": {
            "type": "cloud",
            "destination": {
                "provider": "s3",
                "bucket": "customer-bucket",
                "accessKeyId": "AKIACUSTOMER00000000",
                "accessKeySecret": SECRET,
                "fileFormat": "mkv",
                "endpointUrl": endpoint,
            },
        },
    }


async def _post(server, body) -> tuple[int, dict, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            server.base_url + "/v1/meetings",
            json=body,
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as response,
    ):
        text = await response.text()
        return response.status, await response.json(content_type=None), text


async def test_internal_endpoints_are_refused_with_a_field_named_400(server):
    with policy_scope([], extend=False), resolver_scope({"s3.rebound.test": "192.168.7.7"}):
        for endpoint in INTERNAL:
            status, answer, text = await _post(server, _body(endpoint))
            assert status == 400, (endpoint, answer)
            fields = [f["field"] for f in answer["fields"]]
            assert fields == ["recording.destination.endpointUrl"], (endpoint, answer)
            assert SECRET not in text
    assert server.db is None and server._temp_db is None  # no meeting was ever stored


async def test_an_allow_listed_endpoint_and_a_public_one_are_accepted(server):
    with (
        policy_scope(["10.0.0.0/8"], extend=False),
        resolver_scope({"s3.public.test": "52.216.4.4"}),
    ):
        for endpoint in ("http://10.0.0.8:9000", "https://s3.public.test"):
            status, answer, _ = await _post(server, _body(endpoint))
            assert status == 201, (endpoint, answer)
