"""The target helper (files/impots_helper.py) against the real MariaDB and PostgreSQL of this machine.

Each test uses its own throwaway database and account, dropped afterwards; the shared servers and
the deploy's own database are never touched.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

HELPER = Path(__file__).resolve().parents[2] / "files" / "impots_helper.py"


def helper(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(HELPER), *args], capture_output=True, text=True, check=False, cwd="/"
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helper {args[0]} exited {result.returncode}: {result.stderr}")
    return result


def write_secrets(path: Path, values: dict) -> None:
    path.write_text(json.dumps(values))
    path.chmod(0o600)


@pytest.fixture
def names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"impots-helper-test-{suffix}", f"impots_helper_{suffix}"


def test_secrets_generated_once_then_kept(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    helper("secrets-merge", str(secrets), "--group", "www-data", "--generate", "secret_key,mysql_password")
    first = json.loads(secrets.read_text())
    assert set(first) == {"secret_key", "mysql_password"}
    assert all(len(value) >= 32 for value in first.values())
    info = secrets.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640 and info.st_uid == 0

    helper("secrets-merge", str(secrets), "--group", "www-data", "--generate", "secret_key,mysql_password")
    assert json.loads(secrets.read_text()) == first

    given = tmp_path / "given.json"
    given.write_text(json.dumps({"mysql_password": "given-password-1"}))
    helper(
        "secrets-merge",
        str(secrets),
        "--group",
        "www-data",
        "--given",
        str(given),
        "--generate",
        "secret_key",
    )
    merged = json.loads(secrets.read_text())
    assert merged == {**first, "mysql_password": "given-password-1"}
    assert not given.exists(), "the file of given values must be deleted after reading"


def test_secrets_status_shows_digests_never_values(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    write_secrets(secrets, {"secret_key": "top-secret-value-1"})
    status = json.loads(helper("secrets-status", str(secrets)).stdout)
    assert "top-secret-value-1" not in json.dumps(status)
    assert set(status["values"]) == {"secret_key"} and len(status["values"]["secret_key"]) == 64
    assert (status["user"], status["mode"]) == ("root", "600")


def db_state(secrets: Path, database: str, user: str, dbms: str) -> dict:
    out = helper(
        "db-state", str(secrets), database, user, "--dbms", dbms, "--venv", "/nonexistent", "--app", "/x"
    )
    return json.loads(out.stdout)


def test_mysql_account_lifecycle(tmp_path: Path, names: tuple[str, str]) -> None:
    database, user = names
    secrets = tmp_path / "secrets.json"
    write_secrets(secrets, {"mysql_password": "first-password-1"})
    try:
        state = db_state(secrets, database, user, "mysql")
        assert state["mysql"] == {"database": False, "user": False, "grants": False, "password": False}
        assert state["seed"] == {"mysql": 127}

        helper("mysql-ensure", str(secrets), database, user)
        assert all(db_state(secrets, database, user, "mysql")["mysql"].values())

        # A new password in the secrets file: the state sees it without reading it back, ensure applies it.
        write_secrets(secrets, {"mysql_password": "second-pass'word\\2"})
        state = db_state(secrets, database, user, "mysql")["mysql"]
        assert state == {"database": True, "user": True, "grants": True, "password": False}
        helper("mysql-ensure", str(secrets), database, user)
        assert all(db_state(secrets, database, user, "mysql")["mysql"].values())
    finally:
        sql = f"DROP DATABASE IF EXISTS `{database}`;"
        sql += "".join(f"DROP USER IF EXISTS '{user}'@'{host}';" for host in ("localhost", "127.0.0.1"))
        subprocess.run(["mysql"], input=sql, text=True, check=True)


def test_postgresql_account_lifecycle(tmp_path: Path, names: tuple[str, str]) -> None:
    database, user = names
    secrets = tmp_path / "secrets.json"
    write_secrets(secrets, {"pgres_password": "first-password-1"})
    try:
        state = db_state(secrets, database, user, "pgres")
        assert state["pgres"] == {"user": False, "database": False, "owner": False, "password": False}

        helper("pg-ensure", str(secrets), database, user)
        assert all(db_state(secrets, database, user, "pgres")["pgres"].values())

        write_secrets(secrets, {"pgres_password": "second:pass'word"})
        assert db_state(secrets, database, user, "pgres")["pgres"]["password"] is False
        helper("pg-ensure", str(secrets), database, user)
        assert all(db_state(secrets, database, user, "pgres")["pgres"].values())
    finally:
        sql = f'DROP DATABASE IF EXISTS "{database}";\nDROP ROLE IF EXISTS "{user}";\n'
        subprocess.run(
            ["runuser", "-u", "postgres", "--", "psql", "-q"], input=sql, text=True, check=True, cwd="/"
        )


def test_ensure_without_password_names_the_problem(tmp_path: Path, names: tuple[str, str]) -> None:
    secrets = tmp_path / "secrets.json"
    write_secrets(secrets, {})
    result = helper("mysql-ensure", str(secrets), *names, check=False)
    assert result.returncode == 1
    assert f"{secrets} has no mysql_password" in result.stderr


def test_apache_snapshot_and_restore(tmp_path: Path) -> None:
    config = tmp_path / "apache2"
    (config / "sites-enabled").mkdir(parents=True)
    (config / "sites-available").mkdir()
    (config / "sites-available" / "a.conf").write_text("good\n")
    os.symlink("../sites-available/a.conf", config / "sites-enabled" / "a.conf")
    snapshot = tmp_path / "state" / "before.tar"

    helper("apache-snapshot", str(config), str(snapshot))
    (config / "sites-available" / "a.conf").write_text("bad\n")
    (config / "sites-available" / "b.conf").write_text("new\n")
    helper("apache-snapshot", str(config), str(snapshot))  # kept: still the last good configuration

    helper("apache-restore", str(config), str(snapshot))
    assert (config / "sites-available" / "a.conf").read_text() == "good\n"
    assert not (config / "sites-available" / "b.conf").exists()
    assert os.readlink(config / "sites-enabled" / "a.conf") == "../sites-available/a.conf"
    assert not snapshot.exists()
    assert (tmp_path / "state" / "apache-config-rejected" / "sites-available" / "b.conf").exists()
