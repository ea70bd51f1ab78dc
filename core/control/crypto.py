"""Customer secrets encrypted at rest: the key, the cipher, and the column types.

Secrets (an S3 ``accessKeySecret``, a webhook endpoint's secret) are stored
with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``). The key comes
from, in this order:

1. ``RECFW_SECRET_KEY``: a Fernet key (``recfw keys secret-key`` prints a new
   one) or any random string of at least 32 characters (stretched with HKDF).
   Several keys separated by commas rotate: the first encrypts, all decrypt.
2. ``<data folder>/secret.key``: created on first run (mode 0600, never
   overwritten). Back it up with the database: without it the stored secrets
   cannot be read.

The column types :class:`EncryptedString` and :class:`EncryptedJSON` encrypt on
the way in and hand back :class:`~recfw.secrets.Secret` values on the way out,
so nothing in a row, a log line or a ``repr`` shows a secret. The cipher is
bound to an engine (:func:`bind_cipher`), so two databases in one process may
use two keys.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Text
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.types import TypeDecorator

from ..errors import RecfwError
from ..secrets import Secret

log = logging.getLogger(__name__)

SECRET_KEY_ENV = "RECFW_SECRET_KEY"
KEY_FILE_NAME = "secret.key"
_MIN_PASSPHRASE = 32
_DIALECT_ATTR = "recfw_cipher"


class SecretKeyError(RecfwError):
    """The secret key is missing, malformed, or not the one the data was written with."""


class Cipher:
    """Encrypts and decrypts text with one or more Fernet keys (the first encrypts)."""

    def __init__(self, keys: list[bytes], source: str):
        if not keys:
            raise SecretKeyError(f"{source}: no key given")
        self.source = source
        self._keys = list(keys)
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise SecretKeyError(
                f"a stored secret cannot be decrypted with the key from {self.source}: "
                f"the database was written with another key (set {SECRET_KEY_ENV} to the "
                "key it was written with, or restore the data folder's secret.key)"
            ) from None

    def __repr__(self) -> str:
        return f"Cipher(source={self.source!r})"


def _fernet_key(text: str, source: str) -> bytes:
    """A Fernet key from ``text``: a Fernet key as is, else a long passphrase through HKDF."""
    text = text.strip()
    try:
        if len(base64.urlsafe_b64decode(text.encode("ascii"))) == 32:
            return text.encode("ascii")
    except (binascii.Error, ValueError, UnicodeError):
        pass
    if len(text) < _MIN_PASSPHRASE:
        raise SecretKeyError(
            f"{source} must be a Fernet key (44 characters, url-safe base64) or a random "
            f"string of at least {_MIN_PASSPHRASE} characters"
        )
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"recfw secret key", info=b"fernet"
    ).derive(text.encode("utf-8"))
    return base64.urlsafe_b64encode(derived)


def new_key() -> str:
    """A new random Fernet key (for ``RECFW_SECRET_KEY`` or a key file)."""
    return Fernet.generate_key().decode("ascii")


def load_key_file(path: Path, *, create: bool = True) -> str:
    """The key in ``path``; with ``create``, a new one is written there first if it is missing.

    The file is made with ``O_CREAT | O_EXCL`` and mode 0600 and linked into
    place only once complete, so two processes starting at once agree on one key
    and never read a half-written file.
    """
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        if not create:
            raise SecretKeyError(f"the key file {path} does not exist") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(new_key() + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)  # atomic, fails if another process won the race
            log.warning(
                "created a new secret key in %s: back it up (without it the stored "
                "secrets cannot be read)",
                path,
            )
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key_file(path)


def _read_key_file(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "the key file %s is readable by others (mode %o): chmod 600 it", path, mode & 0o777
        )
    text = path.read_text(encoding="ascii").strip()
    if not text:
        raise SecretKeyError(f"the key file {path} is empty")
    return text


def load_cipher(data_dir: Path, environ: Mapping[str, str] | None = None) -> Cipher:
    """The cipher from ``RECFW_SECRET_KEY``, else from ``<data_dir>/secret.key`` (made if new)."""
    environ = os.environ if environ is None else environ
    value = environ.get(SECRET_KEY_ENV, "").strip()
    if value:
        parts = [p for p in value.split(",") if p.strip()]
        return Cipher([_fernet_key(p, SECRET_KEY_ENV) for p in parts], SECRET_KEY_ENV)
    path = data_dir / KEY_FILE_NAME
    text = load_key_file(path)
    return Cipher([_fernet_key(text, str(path))], str(path))


# --- binding to an engine ------------------------------------------------------


def bind_cipher(engine: Engine, cipher: Cipher) -> None:
    """Make the encrypted column types of ``engine``'s rows use ``cipher``."""
    setattr(engine.dialect, _DIALECT_ATTR, cipher)


def _cipher(dialect: Dialect) -> Cipher:
    cipher = getattr(dialect, _DIALECT_ATTR, None)
    if cipher is None:
        raise SecretKeyError(
            "no secret key is bound to this database engine "
            "(open it through recfw.control.Database)"
        )
    return cipher


class EncryptedString(TypeDecorator[Secret]):
    """A text column holding one encrypted secret; reads back as a :class:`Secret`.

    Accepts a ``Secret`` or a ``str``; ``None`` stays ``NULL``.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        plain = value.reveal() if isinstance(value, Secret) else str(value)
        return _cipher(dialect).encrypt(plain)

    def process_result_value(self, value: Any, dialect: Dialect) -> Secret | None:
        if value is None:
            return None
        return Secret(_cipher(dialect).decrypt(value))


class EncryptedJSON(TypeDecorator[dict[str, Secret]]):
    """A text column holding an encrypted ``{name: secret}`` map; reads back with
    :class:`Secret` values. An empty map is stored as ``NULL``."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if not value:
            return None
        plain = {
            str(k): (v.reveal() if isinstance(v, Secret) else str(v))
            for k, v in value.items()
            if v is not None
        }
        return _cipher(dialect).encrypt(json.dumps(plain, sort_keys=True))

    def process_result_value(self, value: Any, dialect: Dialect) -> dict[str, Secret]:
        if value is None:
            return {}
        return {k: Secret(v) for k, v in json.loads(_cipher(dialect).decrypt(value)).items()}


__all__ = [
    "Cipher",
    "EncryptedJSON",
    "EncryptedString",
    "SECRET_KEY_ENV",
    "SecretKeyError",
    "bind_cipher",
    "load_cipher",
    "load_key_file",
    "new_key",
]
