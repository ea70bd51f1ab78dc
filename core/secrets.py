"""Secrets stay out of logs, errors and output: the one home of every masking rule.

:class:`Secret` holds a value that never shows itself; :func:`mask_key_id`,
:func:`mask_secrets`, :func:`strip_url_credentials`, :func:`mask_url_credentials`
and :func:`safe_url` are what the core, the built-in plugins and contrib
plugins use to show a message, a location or a URL without what must stay hidden.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit


class Secret:
    """Holds a secret value; ``str``/``repr``/f-strings show only a mask.

    Call :meth:`reveal` at the one place the value is really needed (handing it
    to a storage client). Two secrets compare equal when their values do.
    """

    __slots__ = ("_value",)
    _value: str
    MASK = "********"

    def __init__(self, value: str | Secret):
        if isinstance(value, Secret):
            value = value.reveal()
        object.__setattr__(self, "_value", str(value))

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.MASK!r})"

    def __str__(self) -> str:
        return self.MASK

    def __format__(self, spec: str) -> str:
        return self.MASK

    def __eq__(self, other: object) -> bool:
        # Constant-time: comparing secrets must not leak how much of them matched.
        return isinstance(other, Secret) and hmac.compare_digest(
            other._value.encode(), self._value.encode()
        )

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:  # pickling keeps the value
        return (Secret, (self._value,))


def mask_key_id(key_id: str | None) -> str | None:
    """Show enough of an access key id to recognise it, never all of it."""
    if not key_id:
        return key_id
    if len(key_id) <= 8:
        return "****"
    return key_id[:4] + "****" + key_id[-2:]


#: Secrets at least this long are masked even inside a longer word.
MIN_SUBSTRING_MASK = 4


def _value(secret: Secret | str | None) -> str:
    if isinstance(secret, Secret):
        return secret.reveal()
    return secret or ""


def mask_secrets(text: str, *secrets: Secret | str | None) -> str:
    """``text`` with each secret replaced by :attr:`Secret.MASK`, URL credentials removed.

    The one rule for a message that may quote a secret (a storage library's
    error, a sink's validation message): a secret of :data:`MIN_SUBSTRING_MASK`
    characters or more is masked wherever it appears; a shorter one (never a
    real key, but possible in tests and typos) wherever it stands on its own, so
    that a secret ``"s"`` does not turn every ``s`` of the message into stars.
    Longer secrets are masked first, so one that contains another is not left
    half-shown. URL credentials go first (:func:`strip_url_credentials`).
    """
    text = strip_url_credentials(text)
    for value in sorted((_value(s) for s in secrets), key=len, reverse=True):
        if len(value) >= MIN_SUBSTRING_MASK:
            text = text.replace(value, Secret.MASK)
        elif value:
            alone = rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])"
            text = re.sub(alone, lambda _: Secret.MASK, text)
    return text


# --- credentials inside URLs ---------------------------------------------------------

#: ``scheme://`` (RFC 3986 scheme characters), anywhere in a text.
_SCHEME = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://")
#: Where a URL in a message ends: white space or a quote around it.
_URL_END = re.compile(r"[\s'\"<>`]")
#: A host (name, IPv4 or bracketed IPv6) with an optional port, then the end of
#: the authority: what must follow the ``@`` that ends the credentials.
_HOST_AFTER = re.compile(r"(?:\[[0-9A-Fa-f:.%\w]*\]|[\w.\-~%!$&'()*+,;=]*)(?::\d*)?(?:[/?#]|$)")


def _userinfo_end(url: str, start: int) -> int | None:
    """Index of the ``@`` that ends the credentials of the URL whose authority starts at
    ``start`` (just after ``scheme://``), or ``None`` when it has none.

    Standard URLs: the last ``@`` before the first ``/``, ``?`` or ``#``. A secret
    pasted unescaped may itself hold ``/``, ``?`` or ``#`` (an AWS secret often
    holds ``/``), which would cut the URL short and leave the rest of the secret
    in the path. So when the part before that first ``/?#`` has the ``user:``
    of ``user:password`` and the URL has an ``@`` further on that is followed by
    a host, everything up to that last ``@`` counts as credentials. (A path that
    itself holds ``@`` after a ``host:port`` is then shortened too: showing less
    is the safe side.)
    """
    rest = url[start:]
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:cut]
    at = authority.rfind("@")
    user_part = authority.split("@", 1)[0]
    # "[" opens an IPv6 host ("http://[::1]:9/a@b"), never credentials.
    if cut < len(rest) and ":" in user_part and not user_part.startswith("["):
        for later in range(len(rest) - 1, cut - 1, -1):
            if rest[later] == "@" and _HOST_AFTER.match(rest, later + 1):
                return start + later
    return start + at if at >= 0 else None


def _rewrite_urls(text: str, replace: Callable[[str], str]) -> str:
    """``text`` with the credentials of every URL in it passed through ``replace``."""
    out: list[str] = []
    pos = 0
    for match in _SCHEME.finditer(text):
        if match.start() < pos:
            continue  # inside the credentials of a URL already handled
        end_match = _URL_END.search(text, match.end())
        end = end_match.start() if end_match else len(text)
        url = text[:end]
        at = _userinfo_end(url, match.end())
        if at is None:
            continue
        out.append(text[pos : match.end()])
        out.append(replace(text[match.end() : at]))
        pos = at + 1
    out.append(text[pos:])
    return "".join(out)


def strip_url_credentials(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it removed.

    ``"cannot reach ftp://bob:hunter2@host/rec"`` -> ``"cannot reach ftp://host/rec"``.
    A password holding ``/``, ``@``, ``:`` or ``+`` unescaped is recognised whole
    (see :func:`_userinfo_end`). For messages, logs and locations shown to
    people; the URL is not otherwise changed.
    """
    return _rewrite_urls(text, lambda userinfo: "")


def mask_url_credentials(text: str) -> str:
    """Like :func:`strip_url_credentials`, but keeps the user and shows the password
    as :attr:`Secret.MASK`: ``https://hooks:********@example.com/recfw``."""

    def masked(userinfo: str) -> str:
        user, colon, _password = userinfo.partition(":")
        return f"{user}:{Secret.MASK}@" if colon else f"{user}@"

    return _rewrite_urls(text, masked)


def safe_url(url: str) -> str:
    """``url`` without credentials, query or fragment: safe to log.

    ``https://u:p@example.com:8443/a/b?x=1#f`` -> ``https://example.com:8443/a/b``;
    an IPv6 host keeps its brackets (``http://[::1]:9000/h``).
    """
    stripped = strip_url_credentials(url)
    parts = urlsplit(stripped)
    if not parts.scheme:
        return stripped
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
