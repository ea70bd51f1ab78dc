"""The TOML config file: organization defaults, server, encoder options, webhooks."""

from __future__ import annotations

import pytest
from recfw.config import Config, load_config, parse_config
from recfw.errors import SettingsError
from recfw.secrets import Secret
from recfw.settings import EMBEDDED_DEFAULT

SECRET = "s3cr3t-Value-That-Must-Not-Leak"
HOOK_SECRET = "whsec-also-hidden-0042"

GOOD = f"""
[recording]
type = "cloud"
startTrigger = "automatic-2nd-participant"
maxDuration = 7200

[recording.destination]
provider = "s3"
bucket = "acme-recordings/meetings"
accessKeyId = "AKIAIOSFODNN7EXAMPLE"
accessKeySecret = "{SECRET}"
fileFormat = "mp4"

[encoder]
crf = 23

[server]
host = "0.0.0.0"
port = 9000
iceAddresses = ["127.0.0.1", "::1"]

[[webhooks]]
url = "https://example.com/hooks"
secret = "{HOOK_SECRET}"
events = ["recording.finished"]

[[webhooks]]
url = "http://127.0.0.1:9999/all"
"""


def write(tmp_path, text: str):
    path = tmp_path / "recfw.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_fields(text, tmp_path, environ=None) -> list[str]:
    with pytest.raises(SettingsError) as info:
        load_config(write(tmp_path, text), environ={} if environ is None else environ)
    assert SECRET not in str(info.value)
    return [e.field for e in info.value.errors]


def test_good_file(tmp_path):
    config = load_config(write(tmp_path, GOOD), environ={"RECFW_WEBHOOK_SECRET": "from-env"})
    rec = config.recording
    assert (rec.type, rec.start_trigger, rec.max_duration) == (
        "cloud",
        "automatic-2nd-participant",
        7200.0,
    )
    assert rec.destination.provider == "s3"
    assert rec.destination.prefix == "meetings"
    assert rec.destination.access_key_secret == Secret(SECRET)
    assert config.encoder == {"crf": 23}
    assert (config.server.host, config.server.port) == ("0.0.0.0", 9000)
    assert config.server.ice_addresses == ("127.0.0.1", "::1")
    first, second = config.webhooks
    assert first.secret.reveal() == HOOK_SECRET and first.wants("recording.finished")
    assert not first.wants("room.client.joined")
    assert second.secret.reveal() == "from-env" and second.wants("room.client.joined")
    assert config.path.name == "recfw.toml"
    for text in (repr(config), str(config)):
        assert SECRET not in text and HOOK_SECRET not in text and "from-env" not in text


def test_no_file_is_the_embedded_default():
    config = load_config(None, environ={})
    assert config == Config()
    assert config.recording == EMBEDDED_DEFAULT
    assert EMBEDDED_DEFAULT.destination.provider == "local"
    assert EMBEDDED_DEFAULT.destination.file_format == "mkv"
    assert EMBEDDED_DEFAULT.start_trigger == "automatic"
    assert EMBEDDED_DEFAULT.max_duration == 24 * 3600


def test_unset_fields_come_from_the_embedded_default(tmp_path):
    config = load_config(write(tmp_path, '[recording]\nstartTrigger = "none"\n'), environ={})
    assert config.recording.start_trigger == "none"
    assert config.recording.destination == EMBEDDED_DEFAULT.destination
    assert config.recording.max_duration == 24 * 3600


def test_credentials_from_the_environment(tmp_path):
    text = GOOD.replace('accessKeyId = "AKIAIOSFODNN7EXAMPLE"\n', "").replace(
        f'accessKeySecret = "{SECRET}"\n', ""
    )
    env = {
        "RECFW_ACCESS_KEY_ID": "AKIAENVENVENVENV",
        "RECFW_ACCESS_KEY_SECRET": SECRET,
        "RECFW_WEBHOOK_SECRET": "x",
    }
    dest = load_config(write(tmp_path, text), environ=env).recording.destination
    assert dest.access_key_id == "AKIAENVENVENVENV"
    assert dest.access_key_secret.reveal() == SECRET
    # A value in the file wins over the environment.
    dest = load_config(write(tmp_path, GOOD), environ=env).recording.destination
    assert dest.access_key_id == "AKIAIOSFODNN7EXAMPLE"


def test_bad_toml_names_the_file(tmp_path):
    path = write(tmp_path, '[recording\ntype = "cloud"\n')
    with pytest.raises(SettingsError) as info:
        load_config(path, environ={})
    (error,) = info.value.errors
    assert error.field == str(path)
    assert error.message.startswith("not valid TOML")


def test_missing_file(tmp_path):
    with pytest.raises(SettingsError, match="cannot read the file"):
        load_config(tmp_path / "nope.toml", environ={})


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ('[recordings]\ntype = "cloud"\n', ["recordings"]),
        ("encoder = 5\n", ["encoder"]),
        ("[recording]\nmaxDuration = -1\n", ["recording.maxDuration"]),
        ("[recording]\nstartTrigger = 1\n", ["recording.startTrigger"]),
        ("[recording.destination]\nfileFormat = 4\n", ["recording.destination.fileFormat"]),
        (
            f'[recording.destination]\naccessKeySecret = ["{SECRET}"]\n',
            ["recording.destination.accessKeySecret"],
        ),
        ('[recording.destination]\nregoin = "eu-west-1"\n', ["recording.destination.regoin"]),
        ('[server]\nport = "80"\n', ["server.port"]),
        ("[server]\nport = 70000\n", ["server.port"]),
        ("[server]\nport = true\n", ["server.port"]),
        ("[server]\niceAddresses = []\n", ["server.iceAddresses"]),
        ('[server]\niceAddresses = ["not-an-ip"]\n', ["server.iceAddresses"]),
        ('[server]\niceAddresses = ["127.0.0.1", "example.com"]\n', ["server.iceAddresses"]),
        ('[server]\nhots = "x"\n', ["server.hots"]),
        ("server = 1\n", ["server"]),
        ('webhooks = "https://x"\n', ["webhooks"]),
        ('[[webhooks]]\nurl = "ftp://x"\nsecret = "s"\n', ["webhooks[0].url"]),
        ('[[webhooks]]\nurl = "https://x"\n', ["webhooks[0].secret"]),
        ('[[webhooks]]\nurl = "https://x"\nsecret = 5\n', ["webhooks[0].secret"]),
        (
            '[[webhooks]]\nurl = "https://x"\nsecret = "s"\nevents = ["recording.done"]\n',
            ["webhooks[0].events"],
        ),
        ('[[webhooks]]\nurl = "https://x"\nsecret = "s"\nretries = 3\n', ["webhooks[0].retries"]),
    ],
)
def test_errors_name_the_field(tmp_path, text, fields):
    assert error_fields(text, tmp_path) == fields


def test_every_problem_is_reported_at_once(tmp_path):
    text = '[extra]\n[recording]\ntype = 3\n[server]\nport = "x"\n'
    assert sorted(error_fields(text, tmp_path)) == ["extra", "recording.type", "server.port"]


def test_messages_are_readable(tmp_path):
    with pytest.raises(SettingsError) as info:
        load_config(write(tmp_path, '[server]\nport = "80"\n'), environ={})
    assert str(info.value) == "server.port: must be an integer, not str"
    with pytest.raises(SettingsError) as info:
        load_config(
            write(tmp_path, '[[webhooks]]\nurl = "https://x"\nsecret = "s"\nevents = ["a"]\n'),
            environ={},
        )
    assert "unknown event type 'a'" in str(info.value)
    assert "recording.finished" in str(info.value)


def test_parse_config_from_a_mapping():
    config = parse_config({"recording": {"startTrigger": "prompt"}}, environ={})
    assert config.recording.start_trigger == "prompt"
    assert config.path is None


def test_ice_addresses_must_be_ip_addresses(tmp_path):
    with pytest.raises(SettingsError) as info:
        load_config(write(tmp_path, '[server]\niceAddresses = ["127.0.0.1", "not-an-ip"]\n'))
    assert str(info.value).startswith("server.iceAddresses: ")
    assert "'not-an-ip' is not an IP address" in str(info.value)
    config = load_config(write(tmp_path, '[server]\niceAddresses = ["192.0.2.7", "::1"]\n'))
    assert config.server.ice_addresses == ("192.0.2.7", "::1")


def test_ice_addresses_are_checked_by_settings_check(tmp_path):
    from click.testing import CliRunner
    from recfw.cli import main

    path = write(tmp_path, '[server]\niceAddresses = ["not-an-ip"]\n')
    result = CliRunner().invoke(main, ["settings", "check", str(path)])
    assert result.exit_code != 0
    assert "server.iceAddresses" in result.output
    assert "'not-an-ip' is not an IP address" in result.output
    assert "Traceback" not in result.output


def test_rooms_default_to_the_builtin_backend():
    config = parse_config({}, environ={})
    assert config.rooms.backend == "builtin"
    assert config.rooms.janus_url == "ws://127.0.0.1:8188"
    assert config.rooms.janus_api_secret is None


def test_rooms_on_janus_with_the_secret_from_the_environment():
    config = parse_config(
        {"rooms": {"backend": "janus", "janusUrl": "wss://janus.internal:8989"}},
        environ={"RECFW_JANUS_API_SECRET": "janus-secret-0042"},
    )
    assert config.rooms.backend == "janus"
    assert config.rooms.janus_url == "wss://janus.internal:8989"
    assert config.rooms.janus_api_secret == Secret("janus-secret-0042")
    assert "janus-secret-0042" not in repr(config)


@pytest.mark.parametrize(
    ("rooms", "field", "words"),
    [
        ({"backend": "mediasoup"}, "rooms.backend", "must be one of builtin, janus"),
        ({"backend": 3}, "rooms.backend", "must be a string"),
        ({"janusUrl": "http://127.0.0.1:8188"}, "rooms.janusUrl", "ws:// or wss://"),
        ({"janusUrl": "ws://127.0.0.1"}, "rooms.janusUrl", "must name the port"),
        ({"janusUrl": "ws://127.0.0.1:99999"}, "rooms.janusUrl", "not a valid URL"),
        ({"janusApiSecret": " "}, "rooms.janusApiSecret", "must not be empty"),
        ({"janus": "x"}, "rooms.janus", "unknown field"),
    ],
)
def test_rooms_errors_name_the_field(rooms, field, words):
    with pytest.raises(SettingsError) as caught:
        parse_config({"rooms": rooms}, environ={})
    (error,) = caught.value.errors
    assert error.field == field and words in error.message, error


def test_a_wrong_rooms_table_is_named():
    with pytest.raises(SettingsError, match="rooms"):
        parse_config({"rooms": "janus"}, environ={})


def test_media_timeout_is_seconds_within_bounds(tmp_path):
    assert load_config(write(tmp_path, "[server]\n"), environ={}).server.media_timeout == 5.0
    config = load_config(write(tmp_path, "[server]\nmediaTimeout = 2.5\n"), environ={})
    assert config.server.media_timeout == 2.5
    assert (
        load_config(
            write(tmp_path, "[server]\nmediaTimeout = 8\n"), environ={}
        ).server.media_timeout
        == 8.0
    )
    for bad, why in (
        ("0.1", "server.mediaTimeout: must be 0.5..120 seconds, not 0.1"),
        ("nan", "server.mediaTimeout: must be 0.5..120 seconds, not nan"),
        ('"5"', "server.mediaTimeout: must be a number, not str"),
        ("true", "server.mediaTimeout: must be a number, not bool"),
    ):
        with pytest.raises(SettingsError) as info:
            load_config(write(tmp_path, f"[server]\nmediaTimeout = {bad}\n"), environ={})
        assert str(info.value) == why
