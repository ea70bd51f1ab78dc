"""The control plane's database: where it is, how to open it, and its migrations.

Where (first found wins):

1. ``[server] database`` in the config file,
2. ``RECFW_DATABASE_URL``,
3. the embedded default, a SQLite file ``recfw.db`` in recfw's data folder
   (``[server] dataDir``, else ``RECFW_DATA_DIR``, else ``.recfw/`` under the
   working directory, where the spool lives too).

``postgresql://`` (and ``postgres://``) URLs use psycopg 3. SQLite runs in WAL
mode with foreign keys on and a busy timeout; its write transactions start
with ``BEGIN IMMEDIATE`` so two processes never dead-lock upgrading a read
lock. ::

    db = Database.open(config)   # migrated to the newest schema
    with db.session() as s:      # one transaction: commit on success, rollback on error
        s.add(...)
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import FieldError, RecfwError, SettingsError
from .crypto import Cipher, SecretKeyError, bind_cipher, load_cipher

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

DATABASE_URL_ENV = "RECFW_DATABASE_URL"
DATA_DIR_ENV = "RECFW_DATA_DIR"
DEFAULT_DATA_DIR = Path(".recfw")
DB_FILE_NAME = "recfw.db"
#: How long SQLite waits for another writer before giving up (seconds).
SQLITE_BUSY_TIMEOUT = 30.0
_KEY_CHECK = "recfw secret key check"
_READONLY = "recfw_readonly"


class DatabaseUnavailable(RecfwError):
    """The database cannot be reached or opened (the message never holds a password)."""


@dataclass(frozen=True)
class Location:
    """Where the database and the data folder are, and what chose them."""

    url: URL
    data_dir: Path
    source: str  # "[server] database", "RECFW_DATABASE_URL" or "default"

    @property
    def kind(self) -> str:
        return "postgresql" if self.url.get_backend_name() == "postgresql" else "sqlite"

    def shown(self) -> str:
        """The URL with any password masked."""
        return self.url.render_as_string(hide_password=True)


def data_dir(config: Config | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """recfw's data folder: ``[server] dataDir``, ``RECFW_DATA_DIR`` or ``.recfw``."""
    environ = os.environ if environ is None else environ
    configured = getattr(config.server, "data_dir", None) if config is not None else None
    return Path(configured or environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def normalize_url(text: str, field: str = "database") -> URL:
    """A SQLAlchemy URL; ``postgresql://`` becomes ``postgresql+psycopg://``.

    Raises ``SettingsError`` naming ``field`` for a URL that is not one.
    """
    try:
        url = make_url(text.strip())
    except ArgumentError:
        raise SettingsError(
            [FieldError(field, "is not a database URL (postgresql://… or sqlite:///path)")]
        ) from None
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
            url = url.set(drivername="postgresql+psycopg")
        else:
            raise SettingsError(
                [FieldError(field, f"driver {url.drivername!r}: use postgresql:// (psycopg 3)")]
            )
    elif backend != "sqlite":
        raise SettingsError(
            [FieldError(field, f"{backend!r} is not supported: use postgresql:// or sqlite:///")]
        )
    return url


def locate(config: Config | None = None, environ: Mapping[str, str] | None = None) -> Location:
    """Where the database is, per the config file, the environment or the default."""
    environ = os.environ if environ is None else environ
    folder = data_dir(config, environ)
    configured = getattr(config.server, "database", None) if config is not None else None
    if configured:
        return Location(normalize_url(configured, "server.database"), folder, "[server] database")
    if environ.get(DATABASE_URL_ENV, "").strip():
        return Location(
            normalize_url(environ[DATABASE_URL_ENV], DATABASE_URL_ENV), folder, DATABASE_URL_ENV
        )
    path = (folder / DB_FILE_NAME).absolute()
    return Location(URL.create("sqlite+pysqlite", database=str(path)), folder, "default")


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (below) say when transactions begin, not the sqlite3 module.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
            if engine.url.database not in (None, "", ":memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        readonly = connection.get_execution_options().get(_READONLY, False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


class Database:
    """The control plane's database: an engine, sessions, and the migrations.

    Use :meth:`open` (locate, connect, migrate, check the secret key); tests may
    build one from a URL directly and call :meth:`upgrade`.
    """

    def __init__(
        self,
        url: URL | str,
        cipher: Cipher,
        *,
        data_dir: Path | None = None,
        source: str = "url",
        echo: bool = False,
        **engine_options: Any,
    ):
        self.url = url if isinstance(url, URL) else normalize_url(url)
        self.data_dir = data_dir
        #: What chose this database ("[server] database", "RECFW_DATABASE_URL", "default").
        self.source = source
        self.cipher = cipher
        options: dict[str, Any] = {"echo": echo}
        if self.kind == "sqlite":
            if self.url.database not in (None, "", ":memory:"):
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {
                "timeout": SQLITE_BUSY_TIMEOUT,
                "check_same_thread": False,
            }
        else:
            options["pool_pre_ping"] = True
        options.update(engine_options)
        self.engine: Engine = create_engine(self.url, **options)
        if self.kind == "sqlite":
            _sqlite_events(self.engine)
        bind_cipher(self.engine, cipher)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readonly_sessions = sessionmaker(
            self.engine.execution_options(**{_READONLY: True}), expire_on_commit=False
        )

    @classmethod
    def open(
        cls,
        config: Config | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        upgrade: bool = True,
    ) -> Database:
        """Open the configured database (see the module docstring), migrate it to the newest
        schema (unless ``upgrade`` is false) and check the secret key against it."""
        environ = os.environ if environ is None else environ
        where = locate(config, environ)
        cipher = load_cipher(where.data_dir, environ)
        db = cls(where.url, cipher, data_dir=where.data_dir, source=where.source)
        if upgrade:
            try:
                db.upgrade()
                db.check_key()
            except DBAPIError as exc:
                db.dispose()
                raise db.unavailable(exc) from None
            except BaseException:
                db.dispose()
                raise
        log.info("control plane database: %s (%s)", where.shown(), where.source)
        return db

    @property
    def kind(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return "postgresql" if self.url.get_backend_name() == "postgresql" else "sqlite"

    def shown_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises.

        ``readonly`` sessions on SQLite take no write lock (``BEGIN`` instead of
        ``BEGIN IMMEDIATE``); do not write in them.
        """
        factory = self._readonly_sessions if readonly else self._sessions
        with factory() as session, session.begin():
            yield session

    def upgrade(self, revision: str = "head") -> None:
        """Run the Alembic migrations up to ``revision`` (safe to call on every start)."""
        from .migrate import upgrade

        upgrade(self.engine, revision)

    def current_revision(self) -> str | None:
        """The schema revision the database is at (``None``: never migrated)."""
        from .migrate import current_revision

        return current_revision(self.engine)

    def check_key(self) -> None:
        """Make sure the secret key is the one this database's secrets were written with.

        The first call stores a known value encrypted with the key; later calls
        decrypt it. Raises :class:`SecretKeyError` on a wrong key.
        """
        from .models import OrgSettings

        with self.session() as s:
            row = s.execute(select(OrgSettings).where(OrgSettings.id == 1)).scalar_one_or_none()
            if row is None:
                s.add(OrgSettings(id=1, key_check=_KEY_CHECK))
                return
            if row.key_check is None:
                row.key_check = _KEY_CHECK
                return
            if row.key_check.reveal() != _KEY_CHECK:
                raise SecretKeyError("the secret key check in the database holds a wrong value")

    def unavailable(self, exc: DBAPIError) -> DatabaseUnavailable:
        """A one-line error for a driver error, password scrubbed."""
        reason = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc) else ""
        if self.url.password:
            reason = reason.replace(str(self.url.password), "***")
        return DatabaseUnavailable(f"cannot open the database {self.shown_url()}: {reason}")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.shown_url()!r})"


__all__ = [
    "DatabaseUnavailable",
    "DATABASE_URL_ENV",
    "DATA_DIR_ENV",
    "Database",
    "Location",
    "data_dir",
    "locate",
    "normalize_url",
]
