"""Alembic, run from code: the migrations ship inside the package (``migrations/``).

``recfw db upgrade`` and every start call :func:`upgrade`; two processes
starting at once are serialised (an advisory lock on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite), so the schema is migrated once.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

#: Any 64-bit number, the same in every recfw: the migration lock on PostgreSQL.
PG_MIGRATION_LOCK = 0x7265_6366_7700_0001
#: recfw's own version table, so a database shared with another Alembic user is safe.
VERSION_TABLE = "recfw_alembic_version"


def alembic_config(engine: Engine | None = None) -> AlembicConfig:
    """An Alembic configuration pointing at the packaged migrations (no alembic.ini)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("recfw.control") / "migrations"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` up to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate down to ``revision`` (``"base"``: drop everything recfw made)."""
    command.downgrade(alembic_config(engine), revision)


def head_revision() -> str | None:
    """The newest revision the installed recfw knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None``: never migrated)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


__all__ = ["current_revision", "downgrade", "head_revision", "upgrade"]
