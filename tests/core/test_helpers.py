"""The shared helpers (recfw.secrets, recfw.errors.describe, recfw.naming.free_names,
recfw.times): one home each, used by the core, the built-in plugins and contrib."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from recfw.errors import describe, first_line
from recfw.naming import free_names
from recfw.secrets import (
    Secret,
    mask_secrets,
    mask_url_credentials,
    safe_url,
    strip_url_credentials,
)
from recfw.times import iso_utc

# AWS secrets hold "/" and "+"; pasted passwords may hold "@" and ":" too.
secrets_with_separators = st.text(
    alphabet=st.sampled_from("abcXYZ0189/+@:"), min_size=4, max_size=40
).filter(lambda s: any(c in s for c in "/+@:"))
key_ids = st.text(alphabet=st.sampled_from("AKIAXYZ0123456789"), min_size=4, max_size=20)
hosts = st.sampled_from(["127.0.0.1:9000", "[::1]:9000", "s3.example.com", "localhost"])
paths = st.sampled_from(["/", "/bucket", "", "/a/b?x=1"])


@given(key_id=key_ids, secret=secrets_with_separators, host=hosts, path=paths)
def test_url_credentials_with_separators_are_recognised_whole(key_id, secret, host, path):
    url = f"http://{key_id}:{secret}@{host}{path}"
    message = f"endpointUrl: must not contain credentials, not {url!r}"
    for shown in (strip_url_credentials(message), mask_url_credentials(message)):
        assert secret not in shown
        # Not even the part of the secret before its first separator.
        head = secret.split("/")[0].split("@")[0].split(":")[0]
        if len(head) >= 4:
            assert f":{head}" not in shown
        assert host in shown
    assert strip_url_credentials(url) == f"http://{host}{path}"
    assert safe_url(url).startswith(f"http://{host}")
    assert mask_secrets(message, Secret(secret)).count(secret) == 0


def test_the_reported_case_a_secret_with_a_slash():
    url = "http://AKIAEXAMPLE:wJalr/K7MDENG+bPx@127.0.0.1:9000/"
    shown = strip_url_credentials(f"cannot reach {url} now")
    assert shown == "cannot reach http://127.0.0.1:9000/ now"
    assert mask_url_credentials(url) == f"http://AKIAEXAMPLE:{Secret.MASK}@127.0.0.1:9000/"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p@example.com:8443/a/b?x=1#f", "https://example.com:8443/a/b"),
        ("http://[::1]:9000/h", "http://[::1]:9000/h"),
        ("http://k:s@[::1]:9000/h?q", "http://[::1]:9000/h"),
        ("http://[::1]:9000/a@b", "http://[::1]:9000/a@b"),
    ],
)
def test_safe_url_keeps_ipv6_brackets(url, shown):
    assert safe_url(url) == shown


def test_mask_secrets_masks_any_secret_and_url_credentials():
    assert mask_secrets("key abc failed", Secret("abc")) == f"key {Secret.MASK} failed"
    # A short secret is masked where it stands alone, not inside every word.
    assert mask_secrets("names 's' only", "s") == f"names '{Secret.MASK}' only"
    assert mask_secrets("nothing", None, "") == "nothing"
    assert mask_secrets("ftp://u:pw@h/x and pwx", "pwx") == f"ftp://h/x and {Secret.MASK}"


def test_describe_names_the_type_and_keeps_one_line():
    assert describe(ValueError("first\nsecond")) == "ValueError: first"
    assert describe(KeyError()) == "KeyError"
    assert describe(OSError("\n  \nlater line")) == "OSError: later line"
    assert first_line(RuntimeError("x" * 500), 10) == "x" * 10


def test_free_names_one_convention():
    names = list(free_names("room-2026-11-23T19:40:05Z.mkv", 3))
    assert names == [
        "room-2026-11-23T19:40:05Z.mkv",
        "room-2026-11-23T19:40:05Z (2).mkv",
        "room-2026-11-23T19:40:05Z (3).mkv",
    ]
    assert list(free_names("sub.d/name", 2)) == ["sub.d/name", "sub.d/name (2)"]


def test_iso_utc():
    moment = datetime(2026, 11, 23, 20, 40, 5, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert iso_utc(moment) == "2026-11-23T19:40:05.123Z"
    assert iso_utc(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000Z"


def test_settings_never_show_a_secret_inside_an_endpoint_url():
    import recfw.plugins.sinks
    import recfw.plugins.triggers
    from recfw.manager import Plugins
    from recfw.settings import EMBEDDED_DEFAULT, merge, parse_recording, validate

    secret = "wJalr/K7MDENG+bPx@y:z"
    url = f"http://AKIAEXAMPLE:{secret}@127.0.0.1:9000/"
    plugins = Plugins(environ={})
    plugins.register(recfw.plugins.triggers, name="triggers")
    plugins.register(recfw.plugins.sinks, name="sinks")
    settings = merge(
        EMBEDDED_DEFAULT,
        parse_recording(
            {
                "type": "cloud",
                "destination": {"provider": "s3", "bucket": "b-1", "endpointUrl": url},
            }
        ),
    )
    shown = str(settings.to_dict()) + str(validate(settings, plugins))
    assert "wJalr" not in shown and "K7MDENG" not in shown
    assert "http://127.0.0.1:9000/" in shown


@pytest.mark.parametrize(
    ("destination", "valid"),
    [
        # s3 refuses credentials in endpointUrl: the error must not quote them.
        ('provider = "s3"\nbucket = "b-1"\nendpointUrl = "http://AKIAX:{s}@127.0.0.1:9/"', False),
        # fsspec accepts a URL with credentials: the shown settings must not carry them.
        ('provider = "fsspec"\nbucket = "ftp://bob:{s}@127.0.0.1/rec"', True),
    ],
)
def test_settings_check_never_prints_a_url_password_with_a_slash(tmp_path, destination, valid):
    from click.testing import CliRunner
    from recfw.cli import main

    secret = "wJalr/K7MDENG+bPx@q:z"
    config = tmp_path / "recfw.toml"
    config.write_text(
        '[recording]\ntype = "cloud"\nstartTrigger = "automatic"\n\n'
        "[recording.destination]\n"
        + destination.format(s=secret)
        + '\nfileFormat = "mkv"\naccessKeyId = "AKIAEXAMPLE"\naccessKeySecret = "other-secret"\n'
    )
    from recfw.netguard import get_policy, policy_scope

    # settings check makes the config's allowedDestinations the process' policy:
    # restore it, or the session's S3 test server would no longer be allowed.
    with policy_scope(get_policy()):
        result = CliRunner().invoke(main, ["settings", "check", str(config)])
    shown = result.output + str(result.exception or "")
    assert (result.exit_code == 0) is valid, shown
    for part in secret.replace("+", "/").replace("@", "/").replace(":", "/").split("/"):
        assert part not in shown, shown
    if valid:
        assert '"bucket": "ftp://127.0.0.1/rec"' in shown
    else:
        assert "recording.destination.endpointUrl: must not contain credentials" in shown
