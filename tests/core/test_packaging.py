"""The package metadata: one version string, the license, classifiers, build floors."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import recfw
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PYPROJECTS = [ROOT / "pyproject.toml", *sorted(ROOT.glob("contrib/*/pyproject.toml"))]


def test_version_comes_from_the_installed_metadata():
    assert recfw.__version__ == importlib.metadata.version("recfw")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert recfw.__version__ == project["version"]


def test_every_distribution_builds_with_a_setuptools_that_reads_its_license():
    # A PEP 639 license expression (license = "Apache-2.0") needs setuptools >= 77.
    for path in PYPROJECTS:
        data = tomllib.loads(path.read_text())
        assert data["project"]["license"] == "Apache-2.0", path
        reqs = [Requirement(r) for r in data["build-system"]["requires"]]
        (setuptools,) = [r for r in reqs if r.name == "setuptools"]
        assert not setuptools.specifier.contains("76.9"), (path, str(setuptools))
        assert setuptools.specifier.contains("77.0"), (path, str(setuptools))


def test_license_file_is_the_apache_license_and_ships():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    meta = importlib.metadata.metadata("recfw")
    assert meta["License-Expression"] == "Apache-2.0"
    assert "LICENSE" in (meta.get_all("License-File") or [])


def test_classifiers_and_urls():
    meta = importlib.metadata.metadata("recfw")
    classifiers = set(meta.get_all("Classifier") or [])
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert "Typing :: Typed" in classifiers
    assert any(c.startswith("Operating System ::") for c in classifiers)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(urls)
    assert (Path(recfw.__file__).parent / "py.typed").exists()


def test_tox_covers_the_supported_pythons():
    tox = (ROOT / "tox.ini").read_text()
    for env in ("py311", "py312", "py313", "typecheck"):
        assert env in tox
