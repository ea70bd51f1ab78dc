"""Lets the tests run from a source checkout without installing the package first."""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("recfw_webm") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
