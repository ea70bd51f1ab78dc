"""docs/deployment.md cannot drift from the code: its config snippets are valid, its
capacity table follows the admission rule, the commands it names exist, it is linked."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import click
import pytest
from recfw.cli import main
from recfw.config import parse_config
from recfw.queue.cost import admits, cost
from recfw.settings import effective

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "deployment.md"
#: What the page says comes from the environment.
ENVIRON = {
    "RECFW_ACCESS_KEY_SECRET": "secret-from-env",
    "RECFW_WEBHOOK_SECRET": "webhook-secret-from-env",
    "RECFW_QUEUE_URL": "redis://:password@redis.internal:6379/0",
    "RECFW_JANUS_API_SECRET": "janus-secret-from-env",
}


def toml_blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", PAGE.read_text(), re.DOTALL)


def test_the_page_has_both_shapes():
    assert len(toml_blocks()) == 2  # one machine, several machines


@pytest.mark.parametrize("index", range(2))
def test_each_config_snippet_is_valid(index, builtin_plugins):
    config = parse_config(tomllib.loads(toml_blocks()[index]), environ=ENVIRON)
    settings = effective(config.recording, None, builtin_plugins)  # raises on a bad field
    assert settings.destination.provider == "s3"
    assert config.server.ice_addresses and config.server.public_url
    if index == 1:
        assert config.workers.queue is not None
        assert config.rooms.backend == "janus"
        assert config.workers.capacity == 6.4


def test_the_capacity_table_follows_the_admission_rule():
    rows = re.findall(r"^\| (\d+) \| ([\d.]+) \| (\d+)[^|]* \| (\d+) \|$", PAGE.read_text(), re.M)
    assert len(rows) >= 5
    for people, cores, small, large in rows:
        assert cost(int(people)) == float(cores)
        for capacity, shown in ((1.6, small), (6.4, large)):
            fits = 0
            while admits(cost(int(people)), capacity, fits * cost(int(people))):
                fits += 1
            assert fits == int(shown), (people, capacity)


def test_the_commands_it_names_exist():
    commands = set(re.findall(r"`recfw ([a-z]+(?: [a-z]+)?)", PAGE.read_text()))
    assert {"workers", "db upgrade", "spool list"} <= commands
    for command in commands:
        context = click.Context(main)
        words = command.split()
        found = main.get_command(context, words[0])
        assert found is not None, f"recfw {words[0]}"
        if len(words) > 1 and isinstance(found, click.Group):
            assert found.get_command(context, words[1]) is not None, f"recfw {command}"


def test_linked_from_the_readme():
    assert "(docs/deployment.md)" in (ROOT / "README.md").read_text()
