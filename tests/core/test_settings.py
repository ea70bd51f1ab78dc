"""Recording settings: REST shape, merge, validation against installed plugins, secrets."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import recfw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recfw.errors import FieldError, SettingsError
from recfw.manager import Plugins
from recfw.secrets import Secret, mask_key_id
from recfw.settings import (
    EMBEDDED_DEFAULT,
    Destination,
    DestinationOverride,
    RecordingOverride,
    effective,
    merge,
    parse_recording,
    resolve,
    strip_url_credentials,
    validate,
    with_env_credentials,
)

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"


class Format:
    """A file-format name for validation (these tests never encode media)."""

    content_type = "application/octet-stream"

    def __init__(self, name):
        self.name = self.extension = name

    def open(self, output, fmt, options):
        raise NotImplementedError("only the name is used in settings tests")


class Formats:
    @staticmethod
    @recfw.hookimpl
    def recfw_register_encoders(register):
        register(Format("mkv"))
        register(Format("mp4"))


@pytest.fixture
def plugins() -> Plugins:
    """The built-in triggers and sinks, plus the names mkv and mp4 as file formats."""
    import recfw.plugins.sinks
    import recfw.plugins.triggers

    plugins = Plugins(environ={})
    plugins.register(recfw.plugins.triggers, name="triggers")
    plugins.register(recfw.plugins.sinks, name="sinks")
    plugins.register(Formats, name="formats")
    assert plugins.failures == []
    return plugins


def rest_cloud(**destination) -> dict:
    dest = {
        "provider": "s3",
        "bucket": "acme-recordings/meetings/2026",
        "accessKeyId": KEY_ID,
        "accessKeySecret": SECRET,
        "fileFormat": "mp4",
    }
    dest.update(destination)
    return {"type": "cloud", "destination": dest, "startTrigger": "prompt"}


def fields_of(errors) -> list[str]:
    return [e.field for e in errors]


def errors_of(data, plugins, default=EMBEDDED_DEFAULT) -> list[FieldError]:
    try:
        override = parse_recording(data)
    except SettingsError as exc:
        return exc.errors
    return validate(merge(default, override), plugins)


# --- parsing ------------------------------------------------------------------


def test_parse_rest_shape_from_json():
    body = json.loads(json.dumps({"recording": rest_cloud()}))
    settings = parse_recording(body["recording"])
    assert settings.type == "cloud"
    assert settings.start_trigger == "prompt"
    assert settings.max_duration is None
    dest = settings.destination
    assert (dest.provider, dest.bucket, dest.file_format) == (
        "s3",
        "acme-recordings/meetings/2026",
        "mp4",
    )
    assert (dest.bucket_name, dest.prefix) == ("acme-recordings", "meetings/2026")
    assert isinstance(dest.access_key_secret, Secret)
    assert dest.access_key_secret.reveal() == SECRET


def test_nulls_and_missing_fields_are_unset():
    assert parse_recording(None) == RecordingOverride()
    parsed = parse_recording({"type": None, "destination": None, "startTrigger": None})
    assert parsed == RecordingOverride()


def test_to_dict_round_trips_in_rest_shape():
    settings = parse_recording(rest_cloud())
    assert parse_recording(settings.to_dict(reveal=True)) == settings


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"startTriger": "automatic"}, "recording.startTriger", "unknown field"),
        ({"type": 5}, "recording.type", "must be a string, not int"),
        ({"startTrigger": ["automatic"]}, "recording.startTrigger", "must be a string"),
        ({"destination": "s3://bucket"}, "recording.destination", "must be an object or null"),
        ({"destination": {"bukket": "x"}}, "recording.destination.bukket", "unknown field"),
        ({"destination": {"bucket": 7}}, "recording.destination.bucket", "must be a string"),
        (
            {"destination": {"accessKeySecret": 123}},
            "recording.destination.accessKeySecret",
            "must be a string",
        ),
        ({"maxDuration": -5}, "recording.maxDuration", "positive"),
        ({"maxDuration": 0}, "recording.maxDuration", "positive"),
        ({"maxDuration": float("inf")}, "recording.maxDuration", "positive"),
        ({"maxDuration": float("nan")}, "recording.maxDuration", "positive"),
        ({"maxDuration": 10**400}, "recording.maxDuration", "positive"),  # JSON allows it
        ({"maxDuration": "1h"}, "recording.maxDuration", "number of seconds"),
        ({"maxDuration": True}, "recording.maxDuration", "number of seconds"),
    ],
)
def test_shape_errors_name_the_field(data, field, words):
    with pytest.raises(SettingsError) as info:
        parse_recording(data)
    assert fields_of(info.value.errors) == [field]
    assert words in info.value.errors[0].message
    assert str(info.value).startswith(field + ": ")


def test_every_shape_error_is_reported_at_once():
    with pytest.raises(SettingsError) as info:
        parse_recording({"type": 1, "colour": "red", "destination": {"bucket": 2}})
    assert sorted(fields_of(info.value.errors)) == [
        "recording.colour",
        "recording.destination.bucket",
        "recording.type",
    ]


def test_not_an_object():
    with pytest.raises(SettingsError, match=r"^recording: must be an object or null$"):
        parse_recording(["cloud"])


# --- merging ------------------------------------------------------------------


ORG = parse_recording(rest_cloud())


def test_null_inherits_every_field():
    assert merge(ORG, None) == ORG
    assert merge(ORG, RecordingOverride()) == ORG
    assert merge(ORG, parse_recording({"destination": None, "startTrigger": None})) == ORG


def test_set_fields_override():
    meeting = parse_recording({"startTrigger": "automatic", "destination": {"fileFormat": "mkv"}})
    merged = merge(ORG, meeting)
    assert merged.start_trigger == "automatic"
    assert merged.destination.file_format == "mkv"
    # Everything else comes from the organization.
    assert merged.destination.bucket == ORG.destination.bucket
    assert merged.destination.access_key_secret == ORG.destination.access_key_secret
    assert merged.type == "cloud"


def test_same_provider_other_bucket_keeps_credentials():
    merged = merge(ORG, parse_recording({"destination": {"bucket": "team-b"}}))
    assert merged.destination.bucket == "team-b"
    assert merged.destination.access_key_id == KEY_ID


def test_another_provider_drops_default_credentials():
    meeting = parse_recording(
        {"type": "local", "destination": {"provider": "local", "bucket": "/srv/rec"}}
    )
    merged = merge(ORG, meeting)
    dest = merged.destination
    assert (merged.type, dest.provider, dest.bucket) == ("local", "local", "/srv/rec")
    assert dest.access_key_id is None and dest.access_key_secret is None
    assert dest.file_format == "mp4"  # the format is not a credential: it carries over


def test_override_type_none_disables_recording(plugins):
    merged = merge(ORG, parse_recording({"type": "none"}))
    assert merged.type == "none"
    assert validate(merged, plugins) == []


# --- validation against the installed plugins --------------------------------


def test_good_settings_are_valid(plugins):
    assert validate(merge(EMBEDDED_DEFAULT, parse_recording(rest_cloud())), plugins) == []
    assert validate(EMBEDDED_DEFAULT, plugins) == []


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (rest_cloud(fileFormat="avi"), "recording.destination.fileFormat", "unknown file format"),
        (
            {**rest_cloud(), "startTrigger": "when-ready"},
            "recording.startTrigger",
            "unknown trigger 'when-ready'",
        ),
        (rest_cloud(provider="ftp"), "recording.destination.provider", "unknown provider 'ftp'"),
        (rest_cloud(accessKeySecret=None), "recording.destination.accessKeySecret", "required"),
        (rest_cloud(accessKeyId=None), "recording.destination.accessKeyId", "required"),
        (rest_cloud(bucket="Acme_Recordings"), "recording.destination.bucket", "bucket name"),
        (rest_cloud(bucket="ab"), "recording.destination.bucket", "bucket name"),
        (rest_cloud(bucket="acme/../up"), "recording.destination.bucket", ".."),
        ({**rest_cloud(), "type": "tape"}, "recording.type", "must be one of none, local, cloud"),
        (rest_cloud(provider="local"), "recording.destination.provider", 'use type "local"'),
        (
            {"type": "local", "destination": {"provider": "s3", "bucket": "acme-rec"}},
            "recording.destination.provider",
            'type "local"',
        ),
    ],
)
def test_validation_errors_name_the_field(plugins, data, field, words):
    errors = errors_of(data, plugins)
    assert field in fields_of(errors), errors
    messages = " | ".join(e.message for e in errors if e.field == field)
    assert words in messages
    assert all(SECRET not in str(e) for e in errors)


def test_unknown_values_list_what_is_installed(plugins):
    (error,) = errors_of(rest_cloud(fileFormat="avi"), plugins)
    assert error.message == "unknown file format 'avi' (installed: mkv, mp4)"
    (error,) = errors_of({**rest_cloud(), "startTrigger": "x"}, plugins)
    assert "automatic, automatic-2nd-participant, none, prompt" in error.message


def test_effective_raises_with_every_problem(plugins):
    meeting = parse_recording(
        {**rest_cloud(fileFormat="avi", accessKeySecret=None), "startTrigger": "nope"}
    )
    with pytest.raises(SettingsError) as info:
        effective(ORG, meeting, plugins, environ={})
    assert sorted(fields_of(info.value.errors)) == [
        "recording.destination.fileFormat",
        "recording.startTrigger",
    ]  # the secret was inherited from the organization
    meeting = parse_recording(rest_cloud(provider="ftp"))
    assert effective(ORG, parse_recording({"startTrigger": "none"}), plugins, environ={})
    with pytest.raises(SettingsError, match="recording.destination.provider"):
        effective(ORG, meeting, plugins, environ={})


@pytest.mark.parametrize("kind", ["triggers", "encoders", "sinks"])
def test_a_plugins_new_value_is_valid_once_registered(plugins, kind):
    class Webm(Format):
        pass

    class Gcs:
        name = "gcs"
        needs_credentials = False

        def validate(self, destination):
            return [FieldError("bucket", "bucket must be lowercase")] * (
                destination.bucket != destination.bucket.lower()
            )

        def store(self, path, key, destination, progress):
            raise NotImplementedError

    class Later:
        name = "later"
        label = "Later"

        def decide(self, state, event):
            raise NotImplementedError

    new = {"triggers": Later(), "encoders": Webm("webm"), "sinks": Gcs()}[kind]
    hook = f"recfw_register_{kind}"

    def register_it(register):
        register(new)

    plugin = type("NewPlugin", (), {hook: staticmethod(recfw.hookimpl(register_it))})
    plugin_name = f"new-{kind}"
    data = {
        "triggers": {**rest_cloud(), "startTrigger": "later"},
        "encoders": rest_cloud(fileFormat="webm"),
        "sinks": rest_cloud(provider="gcs", bucket="Team"),
    }[kind]
    field = {
        "triggers": "recording.startTrigger",
        "encoders": "recording.destination.fileFormat",
        "sinks": "recording.destination.provider",
    }[kind]
    assert field in fields_of(errors_of(data, plugins))
    plugins.register(plugin, name=plugin_name)
    try:
        errors = errors_of(data, plugins)
        if kind == "sinks":
            # Now the provider's own rules apply, under the destination's field names.
            assert errors == [
                FieldError("recording.destination.bucket", "bucket must be lowercase")
            ]
        else:
            assert errors == []
    finally:
        plugins.unregister(plugin_name)
    assert field in fields_of(errors_of(data, plugins))


def test_a_sink_quoting_the_secret_is_masked(plugins):
    class Chatty:
        name = "chatty"
        needs_credentials = True

        def validate(self, destination):
            secret = destination.access_key_secret.reveal()
            return [FieldError("accessKeySecret", f"{secret!r} is not a valid key")]

        def store(self, path, key, destination, progress):
            raise NotImplementedError

    class ChattyPlugin:
        @staticmethod
        @recfw.hookimpl
        def recfw_register_sinks(register):
            register(Chatty())

    plugins.register(ChattyPlugin, name="chatty")
    (error,) = errors_of(rest_cloud(provider="chatty"), plugins)
    assert error.field == "recording.destination.accessKeySecret"
    assert SECRET not in str(error) and Secret.MASK in str(error)


class _RaisingSink:
    """A sink plugin with a bug in ``validate``: it raises, quoting the secret."""

    name = "raising"
    needs_credentials = True

    def __init__(self, answer=None):
        self.answer = answer

    def validate(self, destination):
        if self.answer is not None:
            return self.answer
        raise KeyError(f"oops {destination.access_key_secret.reveal()}")

    def store(self, path, key, destination, progress):
        raise NotImplementedError


def _register_sink(plugins, sink, name):
    class SinkPlugin:
        @staticmethod
        @recfw.hookimpl
        def recfw_register_sinks(register):
            register(sink)

    plugins.register(SinkPlugin, name=name)
    assert plugins.failures == []


def test_a_sink_whose_validate_raises_is_a_named_field_error(plugins):
    _register_sink(plugins, _RaisingSink(), "acme-raising-sink")
    (error,) = errors_of(rest_cloud(provider="raising"), plugins)
    assert error.field == "recording.destination.provider"
    assert "'raising' sink" in error.message
    assert "acme-raising-sink" in error.message  # the plugin to blame
    assert "KeyError" in error.message and "oops" in error.message
    assert SECRET not in error.message and Secret.MASK in error.message
    # effective() (what every command calls) raises SettingsError, not KeyError.
    with pytest.raises(SettingsError, match="acme-raising-sink"):
        effective(EMBEDDED_DEFAULT, parse_recording(rest_cloud(provider="raising")), plugins, {})


def test_a_sink_answering_something_else_is_a_named_field_error(plugins):
    _register_sink(plugins, _RaisingSink(answer=["bucket is wrong"]), "acme-odd-sink")
    (error,) = errors_of(rest_cloud(provider="raising"), plugins)
    assert error.field == "recording.destination.provider"
    assert "acme-odd-sink" in error.message and "not FieldError" in error.message


def test_url_credentials_in_a_sinks_message_are_stripped(plugins):
    url = "ftp://bob:hunter2-pw@127.0.0.1:21/rec"
    answer = [FieldError("bucket", f"cannot reach {url}")]
    _register_sink(plugins, _RaisingSink(answer=answer), "acme-url-sink")
    (error,) = errors_of(rest_cloud(provider="raising", bucket=url), plugins)
    assert error == FieldError(
        "recording.destination.bucket", "cannot reach ftp://127.0.0.1:21/rec"
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("at ftp://user:PASSW0RD@127.0.0.1:1/rec: refused", "at ftp://127.0.0.1:1/rec: refused"),
        ("'sftp://u:p@ss@h/r'", "'sftp://h/r'"),
        ("simplecache::s3://key:secret@bucket/x", "simplecache::s3://bucket/x"),
        ("http://[::1]:9/a?x=1", "http://[::1]:9/a?x=1"),
        ("gcs://bucket/a@b", "gcs://bucket/a@b"),
        ("memory://recordings and mail a@b", "memory://recordings and mail a@b"),
    ],
)
def test_strip_url_credentials(text, shown):
    assert strip_url_credentials(text) == shown


# --- credentials from the environment -----------------------------------------


def test_env_credentials_fill_what_is_missing(plugins):
    org = merge(
        EMBEDDED_DEFAULT, parse_recording(rest_cloud(accessKeyId=None, accessKeySecret=None))
    )
    env = {"RECFW_ACCESS_KEY_ID": KEY_ID, "RECFW_ACCESS_KEY_SECRET": SECRET}
    filled = with_env_credentials(org, env)
    assert filled.destination.access_key_id == KEY_ID
    assert filled.destination.access_key_secret == Secret(SECRET)
    # effective() answers the effective settings of the same values.
    assert effective(org, None, plugins, environ=env) == resolve(filled)
    meeting = parse_recording({"destination": {"bucket": "team-b"}})
    assert effective(org, meeting, plugins, environ=env).destination.access_key_id == KEY_ID
    with pytest.raises(SettingsError) as info:
        effective(org, meeting, plugins, environ={})
    assert sorted(fields_of(info.value.errors)) == [
        "recording.destination.accessKeyId",
        "recording.destination.accessKeySecret",
    ]
    assert "RECFW_ACCESS_KEY_SECRET" in str(info.value)


def test_env_credentials_never_override_given_ones():
    settings = parse_recording(rest_cloud())
    env = {"RECFW_ACCESS_KEY_ID": "AKIAOTHER", "RECFW_ACCESS_KEY_SECRET": "other"}
    filled = with_env_credentials(settings, env)
    assert filled.destination.access_key_id == KEY_ID
    assert filled.destination.access_key_secret.reveal() == SECRET


# --- secrets stay hidden ----------------------------------------------------------


def test_secret_never_shows():
    secret = Secret(SECRET)
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", "%s" % secret]  # noqa: UP031 (logging formats so)
    assert all(SECRET not in s for s in shown)
    assert secret.reveal() == SECRET
    assert Secret(secret) == secret and Secret("x") != secret and secret != SECRET
    assert bool(Secret("")) is False


def test_settings_never_show_the_secret():
    settings = merge(EMBEDDED_DEFAULT, parse_recording(rest_cloud()))
    for text in (
        repr(settings),
        str(settings),
        repr(settings.destination),
        json.dumps(settings.to_dict()),
        str(replace(settings, start_trigger=None)),
    ):
        assert SECRET not in text
    shown = settings.to_dict()["destination"]
    assert shown["accessKeySecret"] == Secret.MASK
    assert shown["accessKeyId"] == mask_key_id(KEY_ID) == "AKIA****LE"
    assert settings.to_dict(reveal=True)["destination"]["accessKeySecret"] == SECRET


def test_destination_defaults():
    assert DestinationOverride().bucket_name == "" and DestinationOverride().prefix == ""
    assert Destination(provider="s3", bucket="/b/").prefix == ""
    assert DestinationOverride(bucket="b//x/y/").prefix == "x/y"


def test_another_endpoint_does_not_inherit_credentials():
    org = parse_recording(rest_cloud(endpointUrl="https://s3.eu.example.com"))
    same = merge(org, parse_recording({"destination": {"bucket": "team-b"}}))
    assert same.destination.access_key_secret == Secret(SECRET)
    moved = merge(org, parse_recording({"destination": {"endpointUrl": "https://elsewhere.io"}}))
    assert moved.destination.access_key_id is None
    assert moved.destination.access_key_secret is None
    assert moved.destination.bucket == org.destination.bucket


def test_env_credentials_do_not_follow_a_meeting_to_another_provider(plugins):
    env = {"RECFW_ACCESS_KEY_ID": KEY_ID, "RECFW_ACCESS_KEY_SECRET": SECRET}
    org = parse_recording(rest_cloud(accessKeyId=None, accessKeySecret=None))
    assert effective(org, None, plugins, environ=env).destination.access_key_secret
    # The embedded default stores locally: a meeting choosing S3 brings its own keys.
    meeting = parse_recording(rest_cloud(accessKeyId=None, accessKeySecret=None))
    with pytest.raises(SettingsError, match="accessKeySecret"):
        effective(EMBEDDED_DEFAULT, meeting, plugins, environ=env)


# --- any input: a SettingsError or settings, never a crash, never the secret ------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
field_values = st.fixed_dictionaries(
    {},
    optional={
        "type": json_values | st.sampled_from(["none", "local", "cloud"]),
        "startTrigger": json_values | st.sampled_from(["automatic", "prompt", "none"]),
        "maxDuration": json_values,
        "destination": json_values
        | st.fixed_dictionaries(
            {},
            optional={
                "provider": json_values | st.sampled_from(["s3", "local", "fsspec"]),
                "bucket": json_values | st.just("acme-rec/sub"),
                "accessKeyId": json_values | st.just(KEY_ID),
                "accessKeySecret": st.just(SECRET) | json_values,  # the only place of SECRET
                "fileFormat": json_values | st.sampled_from(["mkv", "mp4"]),
                "region": json_values,
                "endpointUrl": json_values,
            },
        ),
    },
)


# The plugins fixture is only read here, so sharing it between examples is fine.
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=field_values | json_values)
def test_any_input_gives_settings_or_field_errors(plugins, data):
    try:
        override = parse_recording(data)
    except SettingsError as exc:
        assert exc.errors and all(e.field.startswith("recording") for e in exc.errors)
        assert SECRET not in str(exc)
        return
    for default in (EMBEDDED_DEFAULT, ORG):
        merged = merge(default, override)
        errors = validate(merged, plugins)
        assert all(isinstance(e, FieldError) and e.field.startswith("recording") for e in errors)
        dest = merged.destination
        if dest is not None and dest.access_key_secret == Secret(SECRET):
            # Known as a secret: masked even where a message quotes a value.
            assert SECRET not in " ".join(map(str, errors))
            assert SECRET not in repr(merged) + json.dumps(merged.to_dict())
