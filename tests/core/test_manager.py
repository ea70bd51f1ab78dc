"""The plugin manager: entry points loaded one at a time, failures isolated and named."""

from __future__ import annotations

import logging
import sys
import textwrap
import uuid
from importlib.metadata import EntryPoint

import pytest
import recfw
from recfw import manager
from recfw.errors import PluginError
from recfw.events import Event
from recfw.manager import Plugins, load_plugins, reset_plugins
from recfw.rooms import RoomEvent, RoomState
from recfw.triggers import NOTHING, Decision

GOOD_PLUGIN = """
from recfw import hookimpl
from recfw.triggers import NOTHING


class Never:
    name = "never-{tag}"
    label = "Never records"

    def decide(self, state, event):
        return NOTHING


@hookimpl
def recfw_register_triggers(register):
    register(Never())
"""


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """Write plugin modules with unique names into a folder on ``sys.path``."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written: list[str] = []

    def write(source: str) -> str:
        module = f"recfw_test_plugin_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        written.append(module)
        return module

    yield write
    for module in written:
        sys.modules.pop(module, None)


def ep(name: str, module: str) -> EntryPoint:
    return EntryPoint(name=name, value=module, group="recfw")


def good_and_broken(plugin_dir) -> tuple[list[EntryPoint], str]:
    tag = uuid.uuid4().hex[:6]
    good = plugin_dir(GOOD_PLUGIN.replace("{tag}", tag))
    broken = plugin_dir("raise RuntimeError('the database driver is missing')\n")
    return [ep("broken", broken), ep("good", good)], f"never-{tag}"


class Trigger:
    """A trigger that fits the contract, for class plugins."""

    label = "test"

    def __init__(self, name):
        self.name = name

    def decide(self, state: RoomState, event: RoomEvent) -> Decision:
        return NOTHING


# --- loading ------------------------------------------------------------------


def test_builtins_come_through_the_entry_point_group():
    plugins = Plugins(environ={})
    plugins.load_entry_points()
    info = plugins.info["triggers"]
    assert info.distribution == "recfw" and info.builtin
    assert info.provides["triggers"] == [
        "automatic",
        "automatic-2nd-participant",
        "none",
        "prompt",
    ]
    assert "recfw_register_triggers" in info.hooks


def test_import_failure_is_reported_and_others_load(plugin_dir, caplog):
    eps, trigger_name = good_and_broken(plugin_dir)
    plugins = Plugins(environ={})
    with caplog.at_level(logging.ERROR, logger="recfw.manager"):
        plugins.load_entry_points(eps)
    assert trigger_name in plugins.triggers
    assert [(f.name, f.stage) for f in plugins.failures] == [("broken", "import")]
    failure = plugins.failures[0]
    assert "RuntimeError: the database driver is missing" in failure.error
    assert "plugin 'broken'" in str(failure)
    assert "broken" in caplog.text and "the database driver is missing" in caplog.text


def test_strict_mode_raises(plugin_dir):
    eps, _ = good_and_broken(plugin_dir)
    plugins = Plugins(environ={"RECFW_STRICT_PLUGINS": "1"})
    with pytest.raises(PluginError, match="broken.*the database driver is missing"):
        plugins.load_entry_points(eps)


def test_allow_list_loads_only_named_plugins(plugin_dir):
    eps, trigger_name = good_and_broken(plugin_dir)
    plugins = Plugins(environ={"RECFW_PLUGINS": "good, other"})
    plugins.load_entry_points(eps)
    assert trigger_name in plugins.triggers
    assert plugins.failures == []  # "broken" was never imported
    assert set(plugins.info) == {"good"}


def test_names_compare_like_distribution_names(plugin_dir):
    tag = uuid.uuid4().hex[:6]
    module = plugin_dir(GOOD_PLUGIN.replace("{tag}", tag))
    allowed = Plugins(environ={"RECFW_PLUGINS": "My-Good.Plugin"})
    allowed.load_entry_points([ep("my_good_plugin", module)])
    assert f"never-{tag}" in allowed.triggers
    blocked = Plugins(environ={"RECFW_DISABLE_PLUGINS": "MY_GOOD-plugin"})
    blocked.load_entry_points([ep("my_good_plugin", module)])
    assert blocked.info == {}


def test_allow_list_keeps_builtins():
    plugins = Plugins(environ={"RECFW_PLUGINS": "something-else"})
    plugins.load_entry_points()
    assert "automatic" in plugins.triggers


def test_block_list_skips_named_plugins(plugin_dir):
    eps, trigger_name = good_and_broken(plugin_dir)
    plugins = Plugins(environ={"RECFW_DISABLE_PLUGINS": "broken"})
    plugins.load_entry_points(eps)
    assert plugins.failures == []
    assert trigger_name in plugins.triggers


def test_block_list_can_disable_a_builtin():
    plugins = Plugins(environ={"RECFW_DISABLE_PLUGINS": "triggers"})
    plugins.load_entry_points()
    assert "automatic" not in plugins.triggers
    assert "triggers" not in plugins.info


def test_misspelt_hook_is_an_error_named_after_the_plugin(plugin_dir):
    module = plugin_dir(
        """
        from recfw import hookimpl

        @hookimpl
        def recfw_register_trigger(register):  # missing "s"
            pass
        """
    )
    plugins = Plugins(environ={})
    plugins.load_entry_points([ep("typo", module)])
    assert [(f.name, f.stage) for f in plugins.failures] == [("typo", "register")]
    assert "recfw_register_trigger" in plugins.failures[0].error
    assert "typo" not in plugins.info
    assert not plugins.pm.has_plugin("typo")
    # The next plugin is not blamed for the first one's typo.
    assert plugins.register(type("Fine", (), {}), name="fine") is not None


def test_wrong_argument_name_is_an_error(plugin_dir):
    module = plugin_dir(
        """
        from recfw import hookimpl

        @hookimpl
        def recfw_register_triggers(add):
            pass
        """
    )
    plugins = Plugins(environ={})
    plugins.load_entry_points([ep("badargs", module)])
    assert [(f.name, f.stage) for f in plugins.failures] == [("badargs", "register")]


def test_register_hook_that_raises_is_isolated():
    class Explodes:
        @staticmethod
        @recfw.hookimpl
        def recfw_register_triggers(register):
            register(Trigger("half-registered"))
            raise ValueError("boom")

    class Fine:
        @staticmethod
        @recfw.hookimpl
        def recfw_register_triggers(register):
            register(Trigger("fine"))

    plugins = Plugins(environ={})
    assert plugins.register(Explodes, name="explodes") is None
    assert plugins.register(Fine, name="fine") is not None
    assert set(plugins.triggers) == {"fine"}  # nothing of the failed plugin is kept
    assert [(f.name, f.stage) for f in plugins.failures] == [("explodes", "register its triggers")]
    assert "ValueError: boom" in plugins.failures[0].error
    assert not plugins.pm.has_plugin("explodes")


@pytest.mark.parametrize(
    "bad",
    [object(), type("NoDecide", (), {"name": "x", "label": "x"})(), Trigger("")],
    ids=["object", "no-decide", "no-name"],
)
def test_object_not_fitting_the_contract_is_rejected(bad):
    class Wrong:
        @staticmethod
        @recfw.hookimpl
        def recfw_register_triggers(register):
            register(bad)

    plugins = Plugins(environ={})
    assert plugins.register(Wrong, name="wrong") is None
    assert plugins.failures[0].name == "wrong"
    assert "TypeError" in plugins.failures[0].error
    assert plugins.triggers == {}


def test_impl_may_take_fewer_arguments():
    class Lazy:
        @staticmethod
        @recfw.hookimpl
        def recfw_register_triggers():
            pass

    plugins = Plugins(environ={})
    info = plugins.register(Lazy, name="lazy")
    assert plugins.failures == []
    assert info is not None and info.provides == {"triggers": []}


def test_temporary_class_plugin_register_and_unregister():
    class Temporary:
        @staticmethod
        @recfw.hookimpl
        def recfw_register_triggers(register):
            register(Trigger("temporary"))

    plugins = Plugins(environ={})
    info = plugins.register(Temporary, name="temporary-plugin")
    assert info is not None and info.provides == {"triggers": ["temporary"]}
    assert plugins.get("triggers", "temporary").name == "temporary"
    plugins.unregister("temporary-plugin")
    assert "temporary" not in plugins.triggers
    with pytest.raises(PluginError, match="no trigger named 'temporary'"):
        plugins.get("triggers", "temporary")


def test_a_plugin_can_replace_a_builtin_until_unregistered(caplog):
    import recfw.plugins.triggers as builtin

    class Replacement:
        @staticmethod
        @recfw.hookimpl
        def recfw_register_triggers(register):
            register(Trigger("automatic"))

    plugins = Plugins(environ={})
    plugins.register(builtin, name="triggers")
    original = plugins.triggers["automatic"]
    with caplog.at_level(logging.WARNING, logger="recfw.manager"):
        plugins.register(Replacement, name="replacement")
    assert "plugin 'replacement' replaces the trigger 'automatic'" in caplog.text
    assert isinstance(plugins.triggers["automatic"], Trigger)
    plugins.unregister("replacement")
    assert plugins.triggers["automatic"] is original  # the built-in is back
    plugins.register(Replacement, name="replacement")
    plugins.unregister("triggers")  # the replacement stays; the other built-ins go
    assert isinstance(plugins.triggers["automatic"], Trigger)
    assert "prompt" not in plugins.triggers


# --- calling ------------------------------------------------------------------


def listener(name: str, seen: list, fail: bool = False):
    class Listener:
        @staticmethod
        @recfw.hookimpl
        def recfw_on_event(event, config):
            seen.append((name, event.type))
            if fail:
                raise RuntimeError(f"{name} is down")

    Listener.__name__ = name
    return Listener


def test_failing_listener_does_not_stop_the_others(caplog):
    seen: list = []
    plugins = Plugins(environ={})
    plugins.register(listener("first", seen), name="first")
    plugins.register(listener("failing", seen, fail=True), name="failing")
    plugins.register(listener("last", seen), name="last")
    with caplog.at_level(logging.ERROR, logger="recfw.manager"):
        plugins.emit(Event("recording.finished", {}), config=None)
    # pluggy's order: last registered first.
    assert seen == [
        ("last", "recording.finished"),
        ("failing", "recording.finished"),
        ("first", "recording.finished"),
    ]
    assert "plugin 'failing'" in caplog.text and "failing is down" in caplog.text


def test_failing_listener_raises_in_strict_mode():
    plugins = Plugins(environ={"RECFW_STRICT_PLUGINS": "yes"})
    plugins.register(listener("failing", [], fail=True), name="failing")
    with pytest.raises(PluginError, match="failing"):
        plugins.emit(Event("recording.finished", {}), config=None)


def test_listener_taking_only_the_event():
    seen = []

    class OnlyEvent:
        @staticmethod
        @recfw.hookimpl
        def recfw_on_event(event):
            seen.append(event.type)

    plugins = Plugins(environ={})
    plugins.register(OnlyEvent, name="only-event")
    plugins.emit(Event("room.client.joined", {}), config=object())
    assert seen == ["room.client.joined"]


def test_load_plugins_is_idempotent():
    reset_plugins()
    try:
        first = load_plugins()
        assert load_plugins() is first
        assert "automatic" in first.triggers
    finally:
        reset_plugins()
    assert manager._loaded is None
