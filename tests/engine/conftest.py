"""Fixtures of the engine tests: the installed plugins and an event-recording listener."""

from __future__ import annotations

import pytest
from recfw import hookimpl
from recfw.manager import Plugins


class EventLog:
    """A listener plugin that keeps every event it is sent."""

    def __init__(self):
        self.events = []

    @hookimpl
    def recfw_on_event(self, event, config):
        self.events.append(event.to_dict())

    def types(self):
        return [e["type"] for e in self.events]


@pytest.fixture
def plugins():
    p = Plugins(environ={})
    p.load_entry_points()
    assert not p.failures, p.failures
    return p


@pytest.fixture
def events(plugins):
    log = EventLog()
    plugins.register(log, name="event-log")
    yield log
    plugins.unregister("event-log")
