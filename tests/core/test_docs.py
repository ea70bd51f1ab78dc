"""The docs cannot drift from the code: every hook, setting and trigger is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from recfw import hookspecs
from recfw.config import _ROOMS_FIELDS, _SERVER_FIELDS, _TOP_LEVEL, _WEBHOOK_FIELDS
from recfw.manager import Plugins
from recfw.recording import DESTINATION_FIELDS as _DESTINATION_FIELDS
from recfw.recording import RECORDING_FIELDS as _RECORDING_FIELDS
from recfw.recording import RECORDING_TYPES

DOCS = Path(__file__).resolve().parents[2] / "docs"


def hook_specs() -> list[str]:
    return sorted(
        name
        for name in dir(hookspecs)
        if name.startswith("recfw_") and hasattr(getattr(hookspecs, name), "recfw_spec")
    )


def headings(page: str) -> set[str]:
    return set(re.findall(r"^## (\S+)\s*$", (DOCS / page).read_text(), re.MULTILINE))


def test_hook_specs_are_found():
    # The marker attribute is how pluggy finds specs; if it changed, this test would be empty.
    assert "recfw_register_triggers" in hook_specs()
    assert set(hook_specs()) <= set(vars(Plugins(environ={}).pm.hook))


@pytest.mark.parametrize("hook", hook_specs())
def test_every_hook_is_documented(hook):
    assert hook in headings("hooks.md"), f"docs/hooks.md has no '## {hook}' section"


def test_no_documented_hook_is_stale():
    documented = {h for h in headings("hooks.md") if h.startswith("recfw_")}
    assert documented <= set(hook_specs())


def test_every_setting_is_documented():
    text = (DOCS / "settings.md").read_text()
    names = [*_RECORDING_FIELDS, *_DESTINATION_FIELDS, *_TOP_LEVEL, *_SERVER_FIELDS]
    names += [*_WEBHOOK_FIELDS, *RECORDING_TYPES, *_ROOMS_FIELDS]
    missing = [n for n in names if not re.search(rf"`(?:[\w.]+\.)?{re.escape(n)}`", text)]
    assert not missing, f"docs/settings.md does not mention {missing}"
    for var in (
        "RECFW_ACCESS_KEY_ID",
        "RECFW_ACCESS_KEY_SECRET",
        "RECFW_WEBHOOK_SECRET",
        "RECFW_JANUS_API_SECRET",
    ):
        assert var in text


def test_every_builtin_trigger_is_documented(builtin_plugins):
    text = (DOCS / "triggers.md").read_text()
    for name, trigger in builtin_plugins.triggers.items():
        assert f"`{name}`" in text and trigger.label in text


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.DOTALL)


def test_the_example_plugin_in_hooks_md_works():
    """The first example of hooks.md registers and its trigger behaves as described."""
    from types import ModuleType

    from recfw.rooms import Joined, Participant, RoomState
    from recfw.triggers import Action, step

    module = ModuleType("recfw_docs_example")
    exec(python_blocks("hooks.md")[0], module.__dict__)
    plugins = Plugins(environ={})
    info = plugins.register(module, name="three_people")
    assert info is not None, plugins.failures
    trigger = plugins.get("triggers", "three-people")
    state = RoomState("room")
    actions = []
    for i in range(3):
        state, decision = step(trigger, state, Joined(float(i), Participant(f"p{i}")))
        actions.append(decision.action)
    assert actions == [Action.NOTHING, Action.NOTHING, Action.START]


def test_the_property_test_in_triggers_md_runs():
    namespace: dict = {}
    exec(python_blocks("hooks.md")[0], namespace)
    exec(python_blocks("triggers.md")[-1], namespace)
    namespace["test_never_records_an_empty_room"]()
