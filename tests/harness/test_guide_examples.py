"""Every code example in docs/plugin-guide.md runs.

Each ```python / ```toml block starts with a comment naming its file
(``# recfw_example.py``); blocks naming the same file are joined in order. The
files are written to a temporary project and pytest runs its tests in a
subprocess, as a plugin author would, with recfw's pytest plugin (the
``pytest11`` entry point) providing the fixtures.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugin-guide.md"
BLOCK = re.compile(r"^```(python|toml)\n(.*?)^```", re.S | re.M)


def guide_files() -> dict[str, str]:
    files: dict[str, str] = {}
    for lang, body in BLOCK.findall(GUIDE.read_text()):
        first = body.splitlines()[0]
        match = re.fullmatch(r"# ([\w./-]+\.(py|toml))", first.strip())
        assert match, f"a {lang} block in the guide does not start with '# <file name>': {first!r}"
        files[match.group(1)] = files.get(match.group(1), "") + body + "\n"
    return files


def test_the_guide_has_examples_of_each_kind():
    files = guide_files()
    code = files["recfw_example.py"]
    for hook in ("recfw_register_triggers", "recfw_register_encoders", "recfw_register_sinks"):
        assert f"def {hook}(" in code
    tests = files["tests/test_example.py"]
    for contract in ("TriggerContract", "EncoderContract", "SinkContract"):
        assert f"({contract})" in tests


def test_the_guide_pyproject_declares_the_entry_point():
    files = guide_files()
    project = tomllib.loads(files["pyproject.toml"])
    entry = project["project"]["entry-points"]["recfw"]
    modules = {value.split(":")[0] for value in entry.values()}
    written = {name.removesuffix(".py").replace("/", ".") for name in files if name.endswith(".py")}
    assert modules <= written, f"entry points {modules} name modules the guide does not write"
    assert project["tool"]["setuptools"]["py-modules"] == ["recfw_example"]


def test_the_guide_examples_pass_their_own_tests(tmp_path: Path):
    for name, text in guide_files().items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    tail = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= 30, tail
    assert "failed" not in result.stdout.splitlines()[-1], tail


if __name__ == "__main__":  # pragma: no cover - write the example project somewhere to look at
    pytest.main([__file__])
