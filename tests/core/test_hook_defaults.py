"""docs/hooks.md: what pluggy does with an implementation's argument that has a default."""

from __future__ import annotations

from pathlib import Path

import pluggy
from packaging.version import Version
from recfw import hookimpl
from recfw.manager import Plugins

HOOKS_MD = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"


class WithDefault:
    def __init__(self):
        self.seen: list[tuple[object, object]] = []

    @hookimpl
    def recfw_on_event(self, event, config="the default"):
        self.seen.append((event, config))


class WithoutDefault:
    def __init__(self):
        self.seen: list[tuple[object, object]] = []

    @hookimpl
    def recfw_on_event(self, event, config):
        self.seen.append((event, config))


def test_an_argument_with_a_default_is_passed_only_by_pluggy_1_7_and_later():
    plugins = Plugins(environ={})
    with_default, without_default = WithDefault(), WithoutDefault()
    plugins.pm.register(with_default, name="with-default")
    plugins.pm.register(without_default, name="without-default")
    plugins.pm.hook.recfw_on_event(event="e1", config="the caller's config")
    assert without_default.seen == [("e1", "the caller's config")]
    if Version(pluggy.__version__) >= Version("1.7"):
        assert with_default.seen == [("e1", "the caller's config")]
    else:  # pluggy <= 1.6: the implementation's default, always
        assert with_default.seen == [("e1", "the default")]
    text = " ".join(HOOKS_MD.read_text().split())
    assert "pluggy up to 1.6 never passes it" in text
    assert "pluggy 1.7 passes it when the hook is called with it" in text
