"""Errors that recfw reports to users: each names what was wrong and where."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one settings field, e.g. ``destination.bucket``."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class RecfwError(Exception):
    """Base class of the errors recfw raises on purpose (as opposed to bugs)."""


class SettingsError(RecfwError, ValueError):
    """Settings failed validation; ``errors`` lists every field-named problem."""

    def __init__(self, errors: list[FieldError]):
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors) or "invalid settings")


class StorageError(RecfwError):
    """A sink could not store a recording. ``kept_at`` says where the local copy is."""

    def __init__(self, message: str, *, kept_at: str | None = None):
        self.kept_at = kept_at
        if kept_at:
            message = f"{message} (the recording was kept at {kept_at})"
        super().__init__(message)


class PluginError(RecfwError):
    """A plugin failed to load, register or run."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first non-empty line of ``exc``'s message, at most ``limit`` characters.

    Library errors (botocore's, aiohttp's, a plugin's) can run over many lines;
    a message shown to people keeps only the first.
    """
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def describe(exc: BaseException, limit: int = 200) -> str:
    """``"TypeName: first line of the message"`` (just ``"TypeName"`` when it has none).

    The one way recfw names an unexpected exception in a one-line error. Callers
    that may quote a secret pass the result through :func:`recfw.secrets.mask_secrets`.
    """
    text = first_line(exc, limit)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
