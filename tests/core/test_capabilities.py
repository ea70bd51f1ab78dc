"""A sink's writes_locally capability decides what a meeting created through the API may choose."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from recfw import hookimpl
from recfw.errors import SettingsError
from recfw.manager import Plugins
from recfw.recording import EMBEDDED_DEFAULT
from recfw.server.meetings import meeting_settings, parse_meeting_request


class _Sink:
    needs_credentials = False

    def __init__(self, name: str, **capabilities: bool):
        self.name = name
        for key, value in capabilities.items():
            setattr(self, key, value)

    def validate(self, destination):
        return []

    def store(self, path, key, destination, progress, *, content_type=None):
        raise NotImplementedError("never stores in these tests")


@pytest.fixture
def plugins() -> Plugins:
    class ThirdParty:
        @staticmethod
        @hookimpl
        def recfw_register_sinks(register):
            register(_Sink("nas", writes_locally=True))
            register(_Sink("remote", writes_locally=False))
            register(_Sink("undeclared"))

    plugins = Plugins(environ={})
    plugins.load_builtins()
    plugins.register(ThirdParty, name="third-party-sinks")
    assert plugins.failures == []
    return plugins


def _body(provider: str) -> dict:
    return {
        "endDate": "2999-01-01T00:00:00Z",
        "recording": {
            "type": "cloud",
            "destination": {
                "provider": provider,
                "bucket": "memory://somewhere" if provider == "fsspec" else "somewhere",
                "fileFormat": "mkv",
            },
        },
    }


@pytest.mark.parametrize("provider", ["nas", "undeclared", "local", "fsspec"])
def test_a_meeting_may_not_choose_the_place_of_a_sink_on_this_machine(plugins, provider):
    body = _body(provider)
    if provider == "local":
        body["recording"]["type"] = "local"
    with pytest.raises(SettingsError) as info:
        parse_meeting_request(body, EMBEDDED_DEFAULT, plugins, datetime.now(UTC), environ={})
    assert [e.field for e in info.value.errors] == ["recording.destination.provider"]
    assert "organization default" in info.value.errors[0].message


def test_a_meeting_may_choose_a_remote_sink(plugins):
    request = parse_meeting_request(
        _body("remote"), EMBEDDED_DEFAULT, plugins, datetime.now(UTC), environ={}
    )
    settings = meeting_settings(EMBEDDED_DEFAULT, request.recording, plugins, environ={})
    assert settings.destination.provider == "remote"
