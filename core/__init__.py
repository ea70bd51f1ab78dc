"""recfw: record video meetings and store the files in a bucket the customer owns.

Plugin authors import :data:`hookimpl` from here; everything else they need is
described in ``recfw.hookspecs`` and ``docs/hooks.md``.
"""

from importlib.metadata import version

import pluggy

#: The installed distribution's version (the one version string is in pyproject.toml).
__version__ = version("recfw")

#: Marker for plugin hook implementations: ``@recfw.hookimpl``.
hookimpl = pluggy.HookimplMarker("recfw")

__all__ = ["__version__", "hookimpl"]
