"""recfw's pytest11 fixtures: register_plugin, recfw_plugins, temp_room, s3_endpoint."""

from __future__ import annotations

import pytest
from recfw import hookimpl
from recfw.manager import load_plugins
from recfw.triggers import NOTHING, Action


class _AlwaysNothing:
    name = "automatic"  # takes over a built-in name for one test
    label = "Never records"

    def decide(self, state, event):
        return NOTHING


class _Plugin:
    @hookimpl
    def recfw_register_triggers(self, register):
        register(_AlwaysNothing())


def test_the_plugin_is_loaded_through_its_entry_point(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("recfw")


def test_register_plugin_overrides_for_one_test(register_plugin):
    register_plugin(_Plugin(), name="override")
    assert isinstance(load_plugins().triggers["automatic"], _AlwaysNothing)


def test_the_override_is_gone_and_the_builtin_back():
    assert not isinstance(load_plugins().triggers["automatic"], _AlwaysNothing)
    assert "override" not in load_plugins().info


def test_register_plugin_into_given_plugins(recfw_plugins, register_plugin):
    before = recfw_plugins.triggers["automatic"]
    info = register_plugin(_Plugin(), name="x", plugins=recfw_plugins)
    assert info.provides == {"triggers": ["automatic"]}
    assert recfw_plugins.triggers["automatic"] is not before
    assert load_plugins().triggers["automatic"] is not recfw_plugins.triggers["automatic"]


def test_register_plugin_reports_a_broken_plugin(register_plugin):
    class Broken:
        @hookimpl
        def recfw_register_triggers(self, register):
            register(object())

    with pytest.raises(AssertionError, match="does not fit the Trigger contract"):
        register_plugin(Broken(), name="broken")


def test_temp_room(temp_room):
    assert temp_room.join("ana").action == Action.START
    assert temp_room.recording
    temp_room.tick(5)
    assert temp_room.state.now == 5
    assert temp_room.leave("ana").action == Action.STOP
    assert [d.action for d in temp_room.decisions] == [Action.START, Action.NOTHING, Action.STOP]


def test_temp_room_with_another_trigger(temp_room, recfw_plugins):
    temp_room.trigger = recfw_plugins.get("triggers", "none")
    temp_room.join("guest")
    assert temp_room.start("guest").action == Action.REFUSE
    temp_room.join("host", host=True)
    assert temp_room.start("host").action == Action.START


def test_s3_endpoint_is_a_real_server_on_loopback(s3_endpoint):
    assert s3_endpoint.endpoint_url.startswith("http://127.0.0.1:")
    bucket = s3_endpoint.create_bucket()
    try:
        s3_endpoint.client().put_object(Bucket=bucket, Key="k", Body=b"v")
        assert s3_endpoint.keys(bucket) == ["k"]
    finally:
        s3_endpoint.delete_bucket(bucket)
