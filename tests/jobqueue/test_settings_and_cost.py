"""``[workers]`` settings (field-named errors, the password never shown) and the cost rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from recfw.config import parse_config
from recfw.errors import SettingsError
from recfw.queue.cost import BASE_CORES, PER_PERSON_CORES, admits, cost, default_capacity
from recfw.queue.settings import shown_queue_url

PASSWORD = "s3cr3t-hunter2"


def test_without_workers_nothing_changes():
    config = parse_config({}, environ={})
    assert config.workers.queue is None


def test_queue_url_from_the_file_and_from_the_environment():
    config = parse_config(
        {"workers": {"queue": f"redis://:{PASSWORD}@127.0.0.1:6379/0", "capacity": 1.5}},
        environ={},
    )
    assert config.workers.queue.reveal() == f"redis://:{PASSWORD}@127.0.0.1:6379/0"
    assert config.workers.capacity == 1.5
    assert PASSWORD not in repr(config.workers) and PASSWORD not in str(config)
    assert shown_queue_url(config.workers.queue) == "redis://:********@127.0.0.1:6379/0"
    environ = {"RECFW_QUEUE_URL": "redis://127.0.0.1:2/3"}
    env = parse_config({}, environ=environ)
    assert env.workers.queue.reveal() == "redis://127.0.0.1:2/3"
    # As everywhere, a value in the file wins over the environment.
    both = parse_config({"workers": {"queue": "redis://127.0.0.1:1/0"}}, environ=environ)
    assert both.workers.queue.reveal() == "redis://127.0.0.1:1/0"


@pytest.mark.parametrize(
    ("table", "environ", "field", "words"),
    [
        ({"queue": f"http://:{PASSWORD}@h/0"}, {}, "workers.queue", "redis://"),
        ({"queue": f"redis://:{PASSWORD}@/0"}, {}, "workers.queue", "no host"),
        ({"queue": f"redis://:{PASSWORD}@h:99999/0"}, {}, "workers.queue", "not a valid URL"),
        ({"queue": f"redis://:{PASSWORD}@h/db"}, {}, "workers.queue", "must be a number"),
        ({"queue": "   "}, {}, "workers.queue", "must not be empty"),
        ({"queue": 5}, {}, "workers.queue", "must be a string"),
        ({}, {"RECFW_QUEUE_URL": f"ftp://:{PASSWORD}@h"}, "RECFW_QUEUE_URL", "redis://"),
        ({"capacity": 0}, {}, "workers.capacity", "must be"),
        ({"capacity": "2"}, {}, "workers.capacity", "must be a number"),
        ({"admissionTimeout": True}, {}, "workers.admissionTimeout", "must be a number"),
        ({"heartbeat": 2, "deadAfter": 1}, {}, "workers.deadAfter", "longer than"),
        ({"quue": "redis://h"}, {}, "workers.quue", "unknown field"),
    ],
)
def test_bad_workers_settings_name_the_field_and_never_the_password(table, environ, field, words):
    with pytest.raises(SettingsError) as info:
        parse_config({"workers": table}, environ=environ)
    text = str(info.value)
    assert field in text and words in text, text
    assert PASSWORD not in text


def test_workers_must_be_a_table():
    with pytest.raises(SettingsError, match="workers: must be a table"):
        parse_config({"workers": "redis://h"}, environ={})


@given(
    people=st.integers(1, 50),
    width=st.integers(160, 3840),
    height=st.integers(120, 2160),
    fps=st.integers(1, 60),
)
def test_cost_grows_with_people_and_pixels(people, width, height, fps):
    c = cost(people, width, height, fps)
    assert c >= BASE_CORES
    assert cost(people + 1, width, height, fps) >= c
    assert cost(people, width * 2, height, fps) >= c
    assert cost(people, width, height, fps, "mp4") == c  # same codecs, another container


def test_cost_of_a_720p_meeting_and_the_default_capacity():
    assert cost(2) == pytest.approx(BASE_CORES + 2 * PER_PERSON_CORES)
    assert cost(0) == cost(1)  # the recorder records at least one tile
    assert default_capacity(2) == pytest.approx(1.6)
    assert default_capacity(16) == pytest.approx(12.8)
    assert admits(0.5, capacity=1.0, load=0.5)
    assert not admits(0.51, capacity=1.0, load=0.5)
    with pytest.raises(ValueError):
        cost(-1)
