"""recfw-azure against recfw's sink contract, on the real Azurite emulator."""

from __future__ import annotations

import pytest
from recfw.settings import Destination, parse_recording, validate
from recfw.storage import StoredObject
from recfw.testing.contracts import SinkContract
from recfw_azure import AzureSink
from recfw_azure import plugin as azure_plugin


class TestAzureSink(SinkContract):
    plugin = AzureSink()

    @pytest.fixture(autouse=True)
    def _azurite(self, azurite):
        self.azurite = azurite

    @pytest.fixture
    def destination(self, azurite, container) -> Destination:
        return azurite.destination(f"{container}/meetings/2026")

    @pytest.fixture
    def broken_destination(self, azurite, container) -> Destination:
        wrong = "d3Jvbmcta2V5" * 7 + "ab=="
        return azurite.destination(f"{container}/meetings", key=wrong)

    def fetch(self, stored: StoredObject, destination: Destination) -> bytes:
        container, blob = stored.location.removeprefix("az://").split("/", 1)
        return self.azurite.read(container, blob)

    def listing(self, destination: Destination) -> list[str]:
        return self.azurite.blobs(destination.bucket_name)


def test_a_missing_container_is_an_error_not_created(azurite, tmp_path):
    path = tmp_path / "r.mkv"
    path.write_bytes(b"data")
    from recfw.errors import StorageError

    with pytest.raises(StorageError, match="does not exist"):
        AzureSink().store(path, "r.mkv", azurite.destination("no-such-container"), None)
    names = [c.name for c in azurite.service().list_containers()]
    assert "no-such-container" not in names


def test_unreachable_endpoint_is_a_storage_error(tmp_path):
    import socket

    from recfw.errors import StorageError
    from recfw.secrets import Secret
    from recfw_azure.azurite import ACCOUNT, ACCOUNT_KEY

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "r.mkv"
    path.write_bytes(b"data")
    dest = Destination(
        provider="azure", bucket="recordings", access_key_id=ACCOUNT,
        access_key_secret=Secret(ACCOUNT_KEY), endpoint_url=f"http://127.0.0.1:{port}/{ACCOUNT}",
    )  # fmt: skip
    with pytest.raises(StorageError) as info:
        AzureSink(connection_timeout=2, read_timeout=2).store(path, "r.mkv", dest, None)
    assert ACCOUNT_KEY not in str(info.value)


@pytest.mark.parametrize(
    ("destination", "field"),
    [
        ({"bucket": "Bad_Container"}, "recording.destination.bucket"),
        ({"bucket": "ok-container/../up"}, "recording.destination.bucket"),
        ({"accessKeyId": "Not An Account"}, "recording.destination.accessKeyId"),
        ({"endpointUrl": "ftp://x"}, "recording.destination.endpointUrl"),
        ({"accessKeySecret": None}, "recording.destination.accessKeySecret"),
    ],
)
def test_provider_azure_settings(recfw_plugins, register_plugin, destination, field):
    data = {
        "type": "cloud",
        "startTrigger": "automatic",
        "destination": {
            "provider": "azure",
            "bucket": "recordings/meetings",
            "accessKeyId": "myaccount",
            "accessKeySecret": "a2V5",
            "fileFormat": next(iter(recfw_plugins.encoders), "mkv"),
        },
    }
    register_plugin(azure_plugin, name="azure", plugins=recfw_plugins)
    errors = validate(parse_recording(data), recfw_plugins)
    assert [e for e in errors if "fileFormat" not in e.field] == []
    data["destination"].update(destination)
    data["destination"] = {k: v for k, v in data["destination"].items() if v is not None}
    fields = [e.field for e in validate(parse_recording(data), recfw_plugins)]
    assert field in fields
