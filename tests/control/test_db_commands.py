"""``recfw keys`` and ``recfw db``, and what ``recfw run`` does with the database at start."""

from __future__ import annotations

import logging

from click.testing import CliRunner
from recfw.cli import main
from recfw.config import parse_config
from recfw.control import Database, OrgSettingsStore
from recfw.control.startup import open_control_plane


def _run(tmp_path, *args: str):
    env = {"RECFW_DATA_DIR": str(tmp_path / "data"), "RECFW_SECRET_KEY": ""}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_keys_create_list_revoke(tmp_path):
    made = _run(tmp_path, "keys", "create", "--name", "ci robot", "--admin")
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[0]
    assert key.startswith("rfk_") and "cannot be shown again" in made.stderr
    listed = _run(tmp_path, "keys", "list")
    assert "ci robot" in listed.stdout and key[:12] in listed.stdout and key not in listed.stdout
    bad = _run(tmp_path, "keys", "revoke", "rfk_nothing")
    assert bad.exit_code == 1 and "no API key" in bad.stderr
    revoked = _run(tmp_path, "keys", "revoke", key[:12])
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    assert "ci robot" not in _run(tmp_path, "keys", "list").stdout
    assert "revoked" in _run(tmp_path, "keys", "list", "--all").stdout
    assert (tmp_path / "data" / "recfw.db").is_file()


def test_db_upgrade_and_info(tmp_path):
    first = _run(tmp_path, "db", "upgrade")
    assert first.exit_code == 0 and "migrated from empty" in first.stdout
    again = _run(tmp_path, "db", "upgrade")
    assert "up to date" in again.stdout
    info = _run(tmp_path, "db", "info")
    assert info.exit_code == 0 and "sqlite" in info.stdout and "up to date" in info.stdout


def test_a_bad_database_url_is_a_field_error(tmp_path):
    path = tmp_path / "recfw.toml"
    path.write_text('[server]\ndatabase = "mysql://x@y/z"\n')
    result = _run(tmp_path, "db", "info", "--config", str(path))
    assert result.exit_code == 3 and "server.database" in result.stderr


def test_run_seeds_the_org_defaults_until_the_api_edits_them(tmp_path, caplog):
    env = {"RECFW_DATA_DIR": str(tmp_path)}
    local = {"type": "local", "destination": {"provider": "local", "bucket": "a"}}
    config = parse_config({"recording": local}, environ={}, path=tmp_path / "a.toml")
    db = open_control_plane(config, env)
    with db.session(readonly=True) as s:
        assert OrgSettingsStore().recording(s) == config.recording.to_dict(reveal=True)
    db.dispose()
    s3 = {
        "type": "cloud",
        "destination": {"provider": "s3", "bucket": "b", "accessKeySecret": "x/y"},
    }
    changed = parse_config({"recording": s3}, environ={}, path=tmp_path / "a.toml")
    db = open_control_plane(changed, env)
    with db.session() as s:
        assert OrgSettingsStore().recording(s)["destination"]["accessKeySecret"] == "x/y"
        OrgSettingsStore().replace(s, {"type": "none"})
    db.dispose()
    with caplog.at_level(logging.WARNING, logger="recfw.control.startup"):
        db = open_control_plane(config, env)
    with db.session(readonly=True) as s:
        assert OrgSettingsStore().recording(s) == {"type": "none"}
    db.dispose()
    assert "the database's apply" in caplog.text
    assert isinstance(db, Database)
