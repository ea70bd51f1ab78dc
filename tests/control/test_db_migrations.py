"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from recfw.control.migrate import VERSION_TABLE, downgrade, head_revision
from recfw.control.models import Base
from sqlalchemy import inspect


def _differences(db) -> list:
    def include(obj, name, type_, reflected, compare_to):
        return not (type_ == "table" and name == VERSION_TABLE)

    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include}
        )
        return compare_metadata(context, Base.metadata)


def test_migrated_schema_matches_the_models(control_db):
    assert control_db.current_revision() == head_revision()
    assert _differences(control_db) == []


def test_upgrade_is_idempotent_and_downgrade_removes_every_table(control_db):
    control_db.upgrade()  # at head already: nothing to do
    assert control_db.current_revision() == head_revision()
    downgrade(control_db.engine, "base")
    tables = set(inspect(control_db.engine).get_table_names()) - {VERSION_TABLE}
    assert tables == set()
    assert control_db.current_revision() is None
    control_db.upgrade()
    assert set(inspect(control_db.engine).get_table_names()) >= set(Base.metadata.tables)
    assert _differences(control_db) == []


def test_migrations_ship_inside_the_package():
    from importlib import resources

    versions = resources.files("recfw.control") / "migrations" / "versions"
    assert any(p.name.endswith(".py") for p in versions.iterdir())
    assert (resources.files("recfw.control") / "migrations" / "env.py").is_file()
