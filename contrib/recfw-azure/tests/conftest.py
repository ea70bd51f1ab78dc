"""Fixtures: the Azurite emulator on loopback, and a fresh container per test."""

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("recfw_azure") is None:  # run from a checkout, not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture(scope="session")
def azurite():
    from recfw_azure.azurite import Azurite, find_azurite

    if find_azurite() is None and shutil.which("node") is None:
        pytest.skip("Node.js is not installed: the Azurite emulator (npm package) needs it")
    with Azurite() as server:
        yield server


@pytest.fixture
def container(azurite):
    return azurite.create_container()
