"""Where the database is, and how SQLite is opened."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime

import pytest
from recfw.config import parse_config
from recfw.control import Database, MeetingStore, locate
from recfw.control.crypto import SECRET_KEY_ENV, new_key
from recfw.control.db import DATA_DIR_ENV, DATABASE_URL_ENV, DatabaseUnavailable
from recfw.control.migrate import head_revision
from recfw.errors import SettingsError
from sqlalchemy import text


def test_the_config_file_wins_over_the_environment_over_the_default(tmp_path):
    env = {DATABASE_URL_ENV: "postgresql://u:pw@db.example/recfw", DATA_DIR_ENV: str(tmp_path)}
    config = parse_config({"server": {"database": "postgres://a@b/c"}}, environ={})
    where = locate(config, env)
    assert where.source == "[server] database"
    assert where.url.drivername == "postgresql+psycopg" and where.url.database == "c"
    where = locate(None, env)
    assert where.source == DATABASE_URL_ENV and "pw" not in where.shown()
    where = locate(None, {DATA_DIR_ENV: str(tmp_path)})
    assert where.source == "default" and where.kind == "sqlite"
    assert where.url.database == str((tmp_path / "recfw.db").absolute())
    config = parse_config({"server": {"dataDir": str(tmp_path / "d")}}, environ={})
    assert locate(config, {}).url.database == str((tmp_path / "d" / "recfw.db").absolute())


@pytest.mark.parametrize("url", ["mysql://x@y/z", "not a url", "postgresql+psycopg2://a@b/c"])
def test_an_unsupported_database_url_names_the_field(url):
    config = parse_config({"server": {"database": url}}, environ={})
    with pytest.raises(SettingsError) as info:
        locate(config, {})
    assert info.value.errors[0].field == "server.database"


def test_empty_database_setting_is_refused():
    with pytest.raises(SettingsError) as info:
        parse_config({"server": {"database": " "}}, environ={})
    assert info.value.errors[0].field == "server.database"


def test_open_migrates_a_new_sqlite_file_in_wal_mode(tmp_path):
    env = {DATA_DIR_ENV: str(tmp_path / "data")}
    db = Database.open(None, env)
    try:
        assert db.current_revision() == head_revision()
        assert (tmp_path / "data" / "recfw.db").is_file()
        assert (tmp_path / "data" / "secret.key").is_file()
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        db.dispose()
    again = Database.open(None, env)  # same key file: the key check passes
    again.dispose()


def test_open_with_the_key_from_the_environment(tmp_path):
    env = {DATA_DIR_ENV: str(tmp_path), SECRET_KEY_ENV: new_key()}
    Database.open(None, env).dispose()
    assert not (tmp_path / "secret.key").exists()


def test_sqlite_writers_in_parallel_do_not_deadlock(tmp_path):
    """Read-then-write transactions from several threads: BEGIN IMMEDIATE serialises them."""
    db = Database.open(None, {DATA_DIR_ENV: str(tmp_path)})
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(15):
                with db.session() as s:
                    s.execute(text("SELECT count(*) FROM meetings")).scalar()
                    MeetingStore().create(s, room_name=f"t{n}-{i}", end_date=datetime.now(UTC))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        with db.session(readonly=True) as s:
            assert s.execute(text("SELECT count(*) FROM meetings")).scalar() == 60
    finally:
        db.dispose()


def test_an_unreachable_postgresql_is_one_clear_line_without_the_password(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://recfw:pw-very-secret@127.0.0.1:{port}/recfw?connect_timeout=5"
    env = {DATA_DIR_ENV: str(tmp_path), DATABASE_URL_ENV: url}
    with pytest.raises(DatabaseUnavailable) as info:
        Database.open(None, env)
    message = str(info.value)
    assert "cannot open the database" in message and f"127.0.0.1:{port}" in message
    assert "pw-very-secret" not in message and "\n" not in message


def test_a_database_password_is_not_in_the_config_repr():
    config = parse_config({"server": {"database": "postgresql://u:pw-hidden@h/d"}}, environ={})
    assert "pw-hidden" not in repr(config)
    assert "pw-hidden" not in locate(config, {}).shown()
