"""The ``recfw`` command: help, ``plugins``, ``settings check``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import recfw
import recfw.plugins.sinks
import recfw.plugins.triggers
from click.testing import CliRunner
from recfw import manager
from recfw.cli import main
from recfw.manager import Plugins

RECFW = Path(sys.executable).with_name("recfw")
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
HOOK_PASSWORD = "hunter2-hook-password"
FOUR = ["automatic", "automatic-2nd-participant", "none", "prompt"]

GOOD = f"""
[recording]
type = "cloud"
startTrigger = "prompt"

[recording.destination]
provider = "s3"
bucket = "acme-recordings/meetings"
accessKeyId = "AKIAIOSFODNN7EXAMPLE"
accessKeySecret = "{SECRET}"
fileFormat = "mkv"

[[webhooks]]
url = "https://hooks:{HOOK_PASSWORD}@example.com/recfw"
secret = "{SECRET}"
"""

BAD = f"""
[recording]
type = "cloud"
startTrigger = "sometimes"

[recording.destination]
provider = "s3"
bucket = "Acme_Recordings"
accessKeyId = "AKIAIOSFODNN7EXAMPLE"
accessKeySecret = "{SECRET}"
fileFormat = "avi"
"""


class Mkv:
    name = extension = "mkv"
    content_type = "video/x-matroska"

    def open(self, output, fmt, options):
        raise NotImplementedError("only the name is used by settings check")


class Formats:
    @staticmethod
    @recfw.hookimpl
    def recfw_register_encoders(register):
        register(Mkv())


class Broken:
    @staticmethod
    @recfw.hookimpl
    def recfw_register_sinks(register):
        raise RuntimeError("cannot reach [the] licence server")


@pytest.fixture
def plugins(monkeypatch) -> Plugins:
    """The process-wide plugins as ``recfw`` sees them: built-ins plus an mkv format name."""
    plugins = Plugins(environ={})
    plugins.register(recfw.plugins.triggers, name="triggers")
    plugins.register(recfw.plugins.sinks, name="sinks")
    plugins.register(Formats, name="formats")
    monkeypatch.setattr(manager, "_loaded", plugins)
    return plugins


@pytest.fixture
def runner(monkeypatch) -> CliRunner:
    for var in ("RECFW_ACCESS_KEY_ID", "RECFW_ACCESS_KEY_SECRET", "RECFW_WEBHOOK_SECRET"):
        monkeypatch.delenv(var, raising=False)
    return CliRunner()


def config_file(tmp_path, text) -> str:
    path = tmp_path / "recfw.toml"
    path.write_text(text)
    return str(path)


def run_recfw(*args, env=None):
    """The installed ``recfw`` console script, as a user runs it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RECFW_")}
    environ.update({"COLUMNS": "200", **(env or {})})
    return subprocess.run(
        [str(RECFW), *args], capture_output=True, text=True, env=environ, timeout=60
    )


# --- help --------------------------------------------------------------------


def test_help_reads_well():
    result = run_recfw("--help")
    assert result.returncode == 0, result.stderr
    for words in ("Record video meetings", "recfw settings check FILE", "plugins", "settings"):
        assert words in result.stdout
    assert run_recfw("-h").stdout == result.stdout


def test_settings_check_help(runner):
    result = runner.invoke(main, ["settings", "check", "--help"])
    assert result.exit_code == 0
    assert "secrets masked" in result.stdout


# --- plugins ------------------------------------------------------------------


def test_plugins_lists_the_four_triggers():
    result = run_recfw("plugins")
    assert "triggers" in result.stdout
    assert "automatic-2nd-participant" in result.stdout
    for name in FOUR:
        assert name in result.stdout


def test_plugins_json():
    result = run_recfw("plugins", "--json")
    data = json.loads(result.stdout)
    assert result.returncode == (1 if data["failures"] else 0)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["triggers"]["provides"]["triggers"] == FOUR
    assert by_name["triggers"]["distribution"] == "recfw"
    assert "recfw_register_triggers" in by_name["triggers"]["hooks"]


def test_plugins_reports_a_failed_plugin(runner, plugins):
    plugins.register(Broken, name="licensed-sink", distribution="acme-recfw")
    result = runner.invoke(main, ["plugins"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "FAILED plugin 'licensed-sink' (from acme-recfw)" in result.stdout
    assert "cannot reach [the] licence server" in result.stdout
    assert "prompt" in result.stdout  # the others are still listed
    result = runner.invoke(main, ["plugins", "--json"])
    assert result.exit_code == 1
    (failure,) = json.loads(result.stdout)["failures"]
    assert failure == {
        "name": "licensed-sink",
        "distribution": "acme-recfw",
        "stage": "register its sinks",
        "error": "RuntimeError: cannot reach [the] licence server",
    }


# --- settings check -------------------------------------------------------------


def test_settings_check_good_file_masks_secrets(runner, plugins, tmp_path):
    result = runner.invoke(main, ["settings", "check", config_file(tmp_path, GOOD)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].endswith("recfw.toml: valid")
    shown = json.loads(result.stdout.split("\n", 1)[1])
    dest = shown["recording"]["destination"]
    assert dest["accessKeySecret"] == "********"
    assert dest["accessKeyId"] == "AKIA****LE"
    assert dest["bucket"] == "acme-recordings/meetings"
    assert shown["recording"]["startTrigger"] == "prompt"
    assert shown["webhooks"][0]["secret"] == "********"
    assert shown["webhooks"][0]["url"] == "https://hooks:********@example.com/recfw"
    assert SECRET not in result.output and HOOK_PASSWORD not in result.output


def test_settings_check_bad_file_names_fields(runner, plugins, tmp_path):
    result = runner.invoke(main, ["settings", "check", config_file(tmp_path, BAD)])
    assert result.exit_code == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "Error: invalid settings:"
    problems = {line.strip().split(":", 1)[0] for line in lines[1:]}
    assert problems == {
        "recording.startTrigger",
        "recording.destination.fileFormat",
        "recording.destination.bucket",
    }
    assert "unknown file format 'avi' (installed: mkv)" in result.stderr
    assert SECRET not in result.output


def test_settings_check_warns_about_broken_plugins(runner, plugins, tmp_path):
    plugins.register(Broken, name="licensed-sink", distribution="acme-recfw")
    text = GOOD.replace('provider = "s3"', 'provider = "licensed"')
    result = runner.invoke(main, ["settings", "check", config_file(tmp_path, text)])
    assert result.exit_code == 3
    assert "warning: plugin 'licensed-sink' (from acme-recfw) failed" in result.stderr
    assert "recording.destination.provider: unknown provider 'licensed'" in result.stderr


def test_settings_check_shows_encoder_options(runner, plugins, tmp_path):
    text = GOOD + "\n[encoder]\ncrf = 23\nsince = 2026-11-23\n"
    result = runner.invoke(main, ["settings", "check", config_file(tmp_path, text)])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout.split("\n", 1)[1])
    assert shown["encoder"] == {"crf": 23, "since": "2026-11-23"}


def test_settings_check_env_secret_is_masked(runner, plugins, tmp_path):
    text = GOOD.replace(f'accessKeySecret = "{SECRET}"\n', "")
    result = runner.invoke(
        main,
        ["settings", "check", config_file(tmp_path, text)],
        env={"RECFW_ACCESS_KEY_SECRET": SECRET},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.split("\n", 1)[1])["recording"]["destination"][
        "accessKeySecret"
    ] == ("********")
    assert SECRET not in result.output
    missing = runner.invoke(main, ["settings", "check", config_file(tmp_path, text)])
    assert missing.exit_code == 3
    assert "recording.destination.accessKeySecret: is required" in missing.stderr


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[recording\ntype = "x"', "not valid TOML"),
        ("[server]\nport = 99999\n", "server.port: must be 0..65535"),
        ("[nonsense]\n", "nonsense: unknown section"),
    ],
)
def test_settings_check_unreadable_files(runner, plugins, tmp_path, text, words):
    result = runner.invoke(main, ["settings", "check", config_file(tmp_path, text)])
    assert result.exit_code == 3
    assert words in result.stderr


def test_settings_check_missing_file(runner, plugins, tmp_path):
    result = runner.invoke(main, ["settings", "check", str(tmp_path / "none.toml")])
    assert result.exit_code == 3
    assert "cannot read the file" in result.stderr


def test_settings_check_installed_command(tmp_path):
    """End to end through the console script: bad exits 3, a good file exits 0, masked."""
    bad = run_recfw("settings", "check", config_file(tmp_path, BAD))
    assert bad.returncode == 3
    assert "recording.startTrigger: unknown trigger 'sometimes'" in bad.stderr
    assert "recording.destination.fileFormat: unknown file format 'avi'" in bad.stderr
    assert SECRET not in bad.stdout + bad.stderr
    # "type none" records nothing, so no file format needs to be installed.
    good = run_recfw(
        "settings",
        "check",
        config_file(tmp_path, GOOD.replace('type = "cloud"', 'type = "none"')),
        env={"RECFW_ACCESS_KEY_SECRET": "unused"},
    )
    assert good.returncode == 0, good.stderr
    assert "valid" in good.stdout and "********" in good.stdout
    assert SECRET not in good.stdout + good.stderr
