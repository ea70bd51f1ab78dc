"""Splitting a ``recording`` / ``destination`` object into what may be shown and its secrets.

Rows keep the REST shape as JSON with every secret taken out, and the secrets
in an encrypted column (:class:`recfw.control.crypto.EncryptedJSON`), keyed by
their dotted path (``"destination.accessKeySecret"``). :func:`join_secrets`
puts them back for the one place that needs them (handing a destination to a
sink).

Secret fields: ``accessKeySecret`` (and any field named like a secret, such as
a future ``sessionToken``), and credentials written inside an ``endpointUrl``
(``http://KEY:SECRET@host/``): the URL is kept whole among the secrets and
shown without its credentials.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from ..secrets import Secret

#: Field names whose values are secrets wherever they appear.
SECRET_FIELD_NAMES = frozenset({"accessKeySecret", "secret", "sessionToken", "password"})
#: Fields holding URLs that may carry credentials.
URL_FIELD_NAMES = frozenset({"endpointUrl"})
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def _strip_userinfo(url: str) -> str | None:
    """``url`` without ``user:password@`` (``None`` if it carries none).

    The password may hold ``/`` (about half of real AWS secrets do), which a
    strict URL parser would take for the start of the path: everything up to
    the last ``@`` before any ``?`` or ``#`` counts as credentials.
    """
    match = _SCHEME.match(url)
    if match is None:
        return None
    rest = url[match.end() :]
    end = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, end)
    if at < 0:
        return None
    return match.group(0) + rest[at + 1 :]


def split_secrets(data: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """``(public, secrets)``: a deep copy of ``data`` without secrets, and the secrets by path.

    ``Secret`` values are revealed into ``secrets`` (they are encrypted there).
    """
    if data is None:
        return None, {}
    public = copy.deepcopy(dict(data))
    secrets: dict[str, str] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key in list(node):
            value = node[key]
            path = f"{prefix}{key}"
            if isinstance(value, Mapping):
                node[key] = dict(value)
                walk(node[key], f"{path}.")
            elif key in SECRET_FIELD_NAMES and value is not None:
                secrets[path] = value.reveal() if isinstance(value, Secret) else str(value)
                del node[key]
            elif key in URL_FIELD_NAMES and isinstance(value, str):
                shown = _strip_userinfo(value)
                if shown is not None:
                    secrets[path] = value
                    node[key] = shown

    walk(public, "")
    return public, secrets


def join_secrets(
    public: Mapping[str, Any] | None, secrets: Mapping[str, Secret | str] | None
) -> dict[str, Any] | None:
    """``public`` with ``secrets`` put back at their paths (revealed, ready for a sink)."""
    if public is None:
        return None
    out = copy.deepcopy(dict(public))
    for path, value in (secrets or {}).items():
        plain = value.reveal() if isinstance(value, Secret) else value
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[leaf] = plain
    return out


__all__ = ["SECRET_FIELD_NAMES", "join_secrets", "split_secrets"]
