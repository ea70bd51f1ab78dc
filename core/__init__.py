"""recfw: record video meetings and store the files in a bucket the customer owns.

Plugin authors import :data:`hookimpl` from here; everything else they need is
described in ``recfw.hookspecs`` and ``docs/hooks.md``.
"""

import pluggy

__version__ = "0.1.0"

#: Marker for plugin hook implementations: ``@recfw.hookimpl``.
hookimpl = pluggy.HookimplMarker("recfw")

__all__ = ["__version__", "hookimpl"]
