"""File names of recordings: safe for any room name, never escaping the prefix."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recfw.naming import (
    MAX_NAME_BYTES,
    format_start_time,
    join_key,
    recording_file_name,
    safe_room_name,
)

START = datetime(2026, 11, 23, 19, 40, 5, tzinfo=UTC)

# Room names as hostile as users make them: separators, dot segments, control and
# invisible characters, any script, and very long names.
hostile = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(["/", "\\", ".", "\x00", "\n", "a", " ", "\u202e", "\u0301"])),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1000, max_size=5000),
    st.lists(st.sampled_from(["..", ".", "/", "etc", "passwd", "\x1b[31m", "ß", "日本"])).map(
        "".join
    ),
)
segment = st.text(
    alphabet=st.characters(categories=("L", "N"), include_characters="-_"), min_size=1, max_size=12
)
prefixes = st.lists(segment, max_size=4).map("/".join)


def test_example_from_design():
    assert recording_file_name("standup", START, "mkv") == "standup-2026-11-23T19:40:05Z.mkv"
    assert recording_file_name("standup", START, ".mp4") == "standup-2026-11-23T19:40:05Z.mp4"


def test_start_time_is_converted_to_utc():
    cet = datetime(2026, 11, 23, 20, 40, 5, 999999, tzinfo=timezone(timedelta(hours=1)))
    assert format_start_time(cet) == "2026-11-23T19:40:05Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_start_time(datetime(2026, 11, 23, 19, 40, 5))


@pytest.mark.parametrize(
    ("room", "expected"),
    [
        ("standup", "standup"),
        ("Weekly sync", "Weekly-sync"),
        ("../../etc/passwd", "etc_passwd"),
        ("/team/standup", "team_standup"),
        ("..", "room"),
        ("", "room"),
        ("\x00\x01", "room"),
        ("Café ☕ 日本", "Café-_-日本"),
    ],
)
def test_safe_room_name_examples(room, expected):
    assert safe_room_name(room) == expected


@settings(max_examples=300, deadline=None)
@given(room=hostile)
def test_safe_room_name_is_always_safe(room):
    name = safe_room_name(room)
    assert name and name not in (".", "..")
    assert "/" not in name and "\\" not in name
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in name)
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert not name.startswith((".", "-", " ")) and not name.endswith((".", " "))
    assert safe_room_name(name) == name  # already safe names are kept


@settings(max_examples=300, deadline=None)
@given(room=hostile, prefix=prefixes, ext=st.sampled_from(["mkv", "mp4", ".webm"]))
def test_key_never_escapes_the_prefix(room, prefix, ext):
    name = recording_file_name(room, START, ext)
    key = join_key(prefix, name)
    if prefix:
        assert key.startswith(prefix + "/")
        assert key[len(prefix) + 1 :] == name
    else:
        assert key == name
    assert ".." not in key.split("/")
    assert "." not in key.split("/")
    assert "" not in key.split("/")
    assert key.endswith("-2026-11-23T19:40:05Z." + ext.lstrip("."))


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_join_key_rejects_unsafe_names(name):
    with pytest.raises(ValueError, match="unsafe file name"):
        join_key("sub", name)


@pytest.mark.parametrize("prefix", ["../x", "a/../b", "./a"])
def test_join_key_rejects_unsafe_prefixes(prefix):
    with pytest.raises(ValueError, match="unsafe prefix"):
        join_key(prefix, "f.mkv")


def test_join_key_normalises_slashes():
    assert join_key("/a//b/", "f.mkv") == "a/b/f.mkv"
    assert join_key("", "f.mkv") == "f.mkv"


@pytest.mark.parametrize("ext", ["", "m/kv", "../mkv", "mkv\x00", "a" * 11])
def test_unsafe_extensions_are_rejected(ext):
    with pytest.raises(ValueError, match="unsafe file extension"):
        recording_file_name("standup", START, ext)
