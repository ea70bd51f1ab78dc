"""JSON answers of the REST API: every error is ``{"error": ...}``, a 400 also lists
each field that was wrong (``{"error": "invalid request", "fields": [{"field",
"message"}]}``), as the meetings API always answered."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..errors import FieldError


def invalid(errors: list[FieldError]) -> web.Response:
    """400 naming every field that was wrong."""
    fields = [{"field": e.field, "message": e.message} for e in errors]
    return web.json_response({"error": "invalid request", "fields": fields}, status=400)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """Any other error: ``{"error": message}``."""
    return web.json_response({"error": message}, status=status, headers=headers)


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def no_content() -> web.Response:
    return web.Response(status=204)


__all__ = ["error", "invalid", "no_content", "ok"]
