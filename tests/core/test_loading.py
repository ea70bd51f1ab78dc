"""Built-in plugins without package metadata, and a command line that loads only what it needs."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from recfw import manager
from recfw.commands import COMMANDS
from recfw.manager import BUILTINS, Plugins


def test_builtins_register_without_any_entry_point(monkeypatch):
    """Broken or missing package metadata: no entry point at all, the built-ins still load."""
    monkeypatch.setattr(manager, "entry_points", lambda group: [])
    plugins = Plugins(environ={})
    plugins.load_entry_points()
    assert plugins.failures == []
    assert set(BUILTINS) <= set(plugins.info)
    assert {"automatic", "none", "prompt"} <= set(plugins.trigger_names())
    assert {"mkv", "mp4"} <= set(plugins.encoder_names())
    assert {"local", "s3", "fsspec"} <= set(plugins.sink_names())
    assert "recfw_register_triggers" in plugins.info["triggers"].hooks  # the same hook path


def test_builtins_are_not_registered_twice():
    plugins = Plugins(environ={})
    plugins.load_entry_points()  # built-ins by import, then recfw's own entry points skipped
    assert plugins.failures == []
    assert [name for name in plugins.info if name in BUILTINS] == list(BUILTINS)


def test_typed_getters_name_what_is_installed():
    plugins = Plugins(environ={})
    plugins.load_builtins()
    assert plugins.trigger("automatic").name == "automatic"
    assert plugins.encoder("mkv").content_type == "video/x-matroska"
    assert plugins.sink("s3").needs_credentials is True
    assert plugins.source("synthetic").name == "synthetic"
    assert plugins.get("encoders", "mp4") is plugins.encoder("mp4")
    with pytest.raises(manager.PluginError, match=r"no sink named 'ftp' .*installed: fsspec"):
        plugins.sink("ftp")
    assert plugins.provided_by("sinks", "s3") == "sinks"


_PROBE = """
import json, sys
from recfw.cli import main
try:
    main({args!r})
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.startswith("recfw.plugins") or m in ("av", "aiortc")
               or m.startswith("recfw.commands."))
print(json.dumps(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help_load_no_plugin(args):
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(args=args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    assert loaded == [], f"recfw {' '.join(args)} imported {loaded}"
    if args == ["--help"]:
        for name, (_, _, text) in COMMANDS.items():
            assert name in done.stdout and text[:30] in done.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_kept_help_is_the_commands_own(name):
    from importlib import import_module

    module, attribute, text = COMMANDS[name]
    command: click.Command = getattr(import_module(module), attribute)
    assert command.name == name
    assert command.get_short_help_str(limit=200) == text


def test_a_plugins_command_is_found_when_asked_for(monkeypatch):
    from click.testing import CliRunner
    from recfw import hookimpl
    from recfw.cli import main

    class HelloPlugin:
        @staticmethod
        @hookimpl
        def recfw_register_commands(cli):
            @click.command("hello-from-plugin")
            def hello():
                """Say hello."""
                click.echo("hello from a plugin")

            cli.add_command(hello)

    plugins = Plugins(environ={})
    plugins.register(HelloPlugin, name="hello")
    monkeypatch.setattr(manager, "_loaded", plugins)
    monkeypatch.setattr(main, "_plugins_asked", False, raising=False)
    try:
        result = CliRunner().invoke(main, ["hello-from-plugin"])
        assert result.exit_code == 0, result.output
        assert result.output == "hello from a plugin\n"
    finally:
        main.commands.pop("hello-from-plugin", None)
