"""The REST API (``/v1``): meetings and recordings, compatible with Whereby's
document, and recfw's own OpenAPI 3.1 document at ``/v1/openapi.json``.

One module per job: :mod:`.meetings` and :mod:`.recordings` (handlers),
:mod:`.links` (signed download URLs), :mod:`.openapi` (the document),
:mod:`.routes` (wiring onto the room server). See docs/api.md.
"""

from __future__ import annotations

from .routes import Api, RoomPlane

__all__ = ["Api", "RoomPlane"]
