"""Alembic's environment for recfw's control plane (run by :mod:`recfw.control.migrate`)."""

from __future__ import annotations

from alembic import context
from recfw.control.migrate import PG_MIGRATION_LOCK, VERSION_TABLE
from recfw.control.models import Base
from sqlalchemy import text

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    raise RuntimeError("run recfw's migrations with `recfw db upgrade`, not the alembic CLI")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # One migrator at a time: held until this transaction ends.
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": PG_MIGRATION_LOCK})
        context.run_migrations()
