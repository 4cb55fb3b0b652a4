"""The target helper (the ``provisioning/remote`` zipapp) against the real MariaDB and PostgreSQL of
this machine, called exactly as the deploy calls it: the typed call's command line run by ``sh -c``.

Each test uses its own throwaway database and account, dropped afterwards; the shared servers and
the deploy's own database are never touched.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from pyinfra.api import StringCommand

from provisioning import remote_call


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(remote_call.build_helper(tmp_path_factory.mktemp("helper")))


def run(command: StringCommand, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a typed call as pyinfra runs it on a target: one ``sh -c`` line."""
    result = subprocess.run(
        ["sh", "-c", command.get_raw_value()], capture_output=True, text=True, check=False, cwd="/"
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{command} exited {result.returncode}: {result.stderr}")
    return result


def write_secrets(path: Path, values: dict) -> None:
    path.write_text(json.dumps(values))
    path.chmod(0o600)


@pytest.fixture
def names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"impots-helper-test-{suffix}", f"impots_helper_{suffix}"


def test_secrets_generated_once_then_kept(pyz: str, tmp_path: Path) -> None:
    secrets = str(tmp_path / "secrets.json")
    generate = ["secret_key", "mysql_password"]
    run(remote_call.secrets_merge(pyz, secrets, "www-data", generate, None))
    first = json.loads(Path(secrets).read_text())
    assert set(first) == {"secret_key", "mysql_password"}
    assert all(len(value) >= 32 for value in first.values())
    info = os.stat(secrets)
    assert stat.S_IMODE(info.st_mode) == 0o640 and info.st_uid == 0

    run(remote_call.secrets_merge(pyz, secrets, "www-data", generate, None))
    assert json.loads(Path(secrets).read_text()) == first

    given = tmp_path / "given.json"
    given.write_text(json.dumps({"mysql_password": "given-password-1"}))
    run(remote_call.secrets_merge(pyz, secrets, "www-data", ["secret_key"], str(given)))
    merged = json.loads(Path(secrets).read_text())
    assert merged == {**first, "mysql_password": "given-password-1"}
    assert not given.exists(), "the file of given values must be deleted after reading"


def test_secrets_status_shows_digests_never_values(pyz: str, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    write_secrets(secrets, {"secret_key": "top-secret-value-1"})
    status = json.loads(run(remote_call.secrets_status(pyz, str(secrets))).stdout)
    assert "top-secret-value-1" not in json.dumps(status)
    assert set(status["values"]) == {"secret_key"} and len(status["values"]["secret_key"]) == 64
    assert (status["user"], status["mode"]) == ("root", "600")


def test_unknown_group_is_refused_before_any_write(pyz: str, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    result = run(remote_call.secrets_merge(pyz, str(secrets), "no-such-group", ["secret_key"], None), False)
    assert result.returncode == 1
    assert result.stderr.strip() == f"impots-helper: no group 'no-such-group' on this host to own {secrets}"
    assert not secrets.exists()


def db_state(pyz: str, secrets: Path, database: str, user: str, dbms: str) -> dict:
    seeder = str(secrets.parent / "seeder-secrets.json")
    call = remote_call.database_state(pyz, str(secrets), database, user, [dbms], "/nonexistent", "/x", seeder)
    return json.loads(run(call).stdout)


def seeder_file(secrets: Path) -> str:
    return str(secrets.parent / "seeder-secrets.json")


def mysql_as(user: str, password: str, database: str, sql: str) -> subprocess.CompletedProcess[str]:
    """Run ``sql`` as ``user`` over TCP (the app's way in); the password travels in MYSQL_PWD."""
    command = ["mysql", "--protocol=TCP", "-h", "127.0.0.1", "-u", user, "-D", database, "-e", sql]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "MYSQL_PWD": password})


def psql_as(user: str, password: str, database: str, sql: str) -> subprocess.CompletedProcess[str]:
    command = ["psql", "-X", "-w", "-h", "127.0.0.1", "-U", user, "-d", database, "-v", "ON_ERROR_STOP=1"]
    environment = {**os.environ, "PGPASSWORD": password}
    return subprocess.run([*command, "-c", sql], capture_output=True, text=True, env=environment, cwd="/")


def test_mysql_account_lifecycle(pyz: str, tmp_path: Path, names: tuple[str, str]) -> None:
    database, user = names
    secrets = tmp_path / "secrets.json"
    write_secrets(secrets, {"mysql_password": "first-password-1"})
    ensure = remote_call.mysql_ensure(pyz, str(secrets), database, user, seeder_file(secrets))
    try:
        state = db_state(pyz, secrets, database, user, "mysql")
        assert state["mysql"] == {"database": False, "user": False, "grants": False, "password": False}
        assert state["seed"] == {"mysql": 127}

        run(ensure)
        assert all(db_state(pyz, secrets, database, user, "mysql")["mysql"].values())
        seeder = json.loads(Path(seeder_file(secrets)).read_text())["mysql_password"]
        assert stat.S_IMODE(os.stat(seeder_file(secrets)).st_mode) == 0o600

        # Least privilege: the seeder makes and fills a table, the app's account only reads it.
        made = mysql_as(
            f"{user}_seed", seeder, database, "CREATE TABLE t (id INT); INSERT INTO t VALUES (1);"
        )
        assert made.returncode == 0, made.stderr
        assert mysql_as(user, "first-password-1", database, "SELECT id FROM t").stdout.split() == ["id", "1"]
        for sql in ("INSERT INTO t VALUES (2)", "DELETE FROM t", "CREATE TABLE u (id INT)", "DROP TABLE t"):
            refused = mysql_as(user, "first-password-1", database, sql)
            assert refused.returncode != 0 and "denied" in refused.stderr, sql

        # An app account left with ALL privileges by an older deploy is seen, and reduced to SELECT.
        for host in ("localhost", "127.0.0.1"):
            subprocess.run(["mysql"], input=f"GRANT ALL ON `{database}`.* TO '{user}'@'{host}';", text=True)
        assert db_state(pyz, secrets, database, user, "mysql")["mysql"]["grants"] is False
        run(ensure)
        assert all(db_state(pyz, secrets, database, user, "mysql")["mysql"].values())
        assert mysql_as(user, "first-password-1", database, "DELETE FROM t").returncode != 0

        # A new password in the secrets file: the state sees it without reading it back, ensure applies it.
        write_secrets(secrets, {"mysql_password": "second-pass'word\\2"})
        state = db_state(pyz, secrets, database, user, "mysql")["mysql"]
        assert state == {"database": True, "user": True, "grants": True, "password": False}
        run(ensure)
        assert all(db_state(pyz, secrets, database, user, "mysql")["mysql"].values())
        # The seeder's password was made once and kept.
        assert json.loads(Path(seeder_file(secrets)).read_text())["mysql_password"] == seeder
    finally:
        sql = f"DROP DATABASE IF EXISTS `{database}`;"
        sql += "".join(
            f"DROP USER IF EXISTS '{name}'@'{host}';"
            for host in ("localhost", "127.0.0.1")
            for name in (user, f"{user}_seed")
        )
        subprocess.run(["mysql"], input=sql, text=True, check=True)


def test_postgresql_account_lifecycle(pyz: str, tmp_path: Path, names: tuple[str, str]) -> None:
    database, user = names
    secrets = tmp_path / "secrets.json"
    write_secrets(secrets, {"pgres_password": "first-password-1"})
    ensure = remote_call.pg_ensure(pyz, str(secrets), database, user, seeder_file(secrets))
    as_postgres = ["runuser", "-u", "postgres", "--", "psql", "-q", "-v", "ON_ERROR_STOP=1"]
    try:
        state = db_state(pyz, secrets, database, user, "pgres")
        assert state["pgres"] == {"user": False, "database": False, "owner": False, "password": False}

        # An older deploy: the app's role owns the database and a table it made.
        old = f"CREATE ROLE \"{user}\" LOGIN PASSWORD 'first-password-1';\n"
        old += f'CREATE DATABASE "{database}" OWNER "{user}";\n'
        subprocess.run(as_postgres, input=old, text=True, check=True, cwd="/")
        assert psql_as(user, "first-password-1", database, "CREATE TABLE t (id int)").returncode == 0
        assert db_state(pyz, secrets, database, user, "pgres")["pgres"]["owner"] is False

        run(ensure)
        assert all(db_state(pyz, secrets, database, user, "pgres")["pgres"].values())
        seeder = json.loads(Path(seeder_file(secrets)).read_text())["pgres_password"]
        # Least privilege: the seeder writes (old and new tables), the app's role only reads.
        made = psql_as(f"{user}_seed", seeder, database, "INSERT INTO t VALUES (1); CREATE TABLE u (id int)")
        assert made.returncode == 0, made.stderr
        for table in ("t", "u"):
            assert psql_as(user, "first-password-1", database, f"SELECT * FROM {table}").returncode == 0
        for sql in ("INSERT INTO t VALUES (2)", "DELETE FROM t", "CREATE TABLE v (id int)", "DROP TABLE u"):
            refused = psql_as(user, "first-password-1", database, sql)
            assert refused.returncode != 0 and ("denied" in refused.stderr or "owner" in refused.stderr), sql

        write_secrets(secrets, {"pgres_password": "second:pass'word"})
        assert db_state(pyz, secrets, database, user, "pgres")["pgres"]["password"] is False
        run(ensure)
        assert all(db_state(pyz, secrets, database, user, "pgres")["pgres"].values())
    finally:
        sql = f'DROP DATABASE IF EXISTS "{database}";\n'
        sql += f'DROP ROLE IF EXISTS "{user}";\nDROP ROLE IF EXISTS "{user}_seed";\n'
        subprocess.run(as_postgres, input=sql, text=True, check=True, cwd="/")


def test_ensure_without_password_names_the_problem(pyz: str, tmp_path: Path, names: tuple[str, str]) -> None:
    secrets = tmp_path / "secrets.json"
    write_secrets(secrets, {})
    result = run(remote_call.mysql_ensure(pyz, str(secrets), *names, seeder_file(secrets)), check=False)
    assert result.returncode == 1
    assert f"{secrets} has no mysql_password" in result.stderr
    assert result.stderr.count("\n") == 1, "one line, no traceback"


def test_unknown_dbms_is_a_usage_error(pyz: str, tmp_path: Path) -> None:
    call = remote_call.database_state(pyz, str(tmp_path / "s.json"), "d", "u", ["oracle"], "/v", "/a", "/s")
    result = run(call, check=False)
    assert result.returncode == 2
    assert result.stderr == "impots-helper: unknown DBMS oracle (known: mysql, pgres)\n"


def apache_config(root: Path) -> Path:
    config = root / "apache2"
    (config / "sites-enabled").mkdir(parents=True)
    (config / "sites-available").mkdir()
    (config / "sites-available" / "a.conf").write_text("good\n")
    os.symlink("../sites-available/a.conf", config / "sites-enabled" / "a.conf")
    return config


def test_apache_snapshot_and_restore(pyz: str, tmp_path: Path) -> None:
    config = apache_config(tmp_path)
    snapshot = tmp_path / "state" / "before.tar"

    run(remote_call.apache_snapshot(pyz, str(config), str(snapshot)))
    (config / "sites-available" / "a.conf").write_text("bad\n")
    (config / "sites-available" / "b.conf").write_text("new\n")
    # kept: still the last good configuration
    run(remote_call.apache_snapshot(pyz, str(config), str(snapshot)))

    run(remote_call.apache_restore(pyz, str(config), str(snapshot)))
    assert (config / "sites-available" / "a.conf").read_text() == "good\n"
    assert not (config / "sites-available" / "b.conf").exists()
    assert os.readlink(config / "sites-enabled" / "a.conf") == "../sites-available/a.conf"
    assert not snapshot.exists()
    assert (tmp_path / "state" / "apache-config-rejected" / "sites-available" / "b.conf").exists()


def test_restore_without_snapshot_names_it(pyz: str, tmp_path: Path) -> None:
    config = apache_config(tmp_path)
    result = run(remote_call.apache_restore(pyz, str(config), str(tmp_path / "none.tar")), check=False)
    assert (result.returncode, result.stderr) == (
        1,
        f"impots-helper: no snapshot {tmp_path}/none.tar to restore\n",
    )
    assert (config / "sites-available" / "a.conf").read_text() == "good\n"


def append_to(log: Path, line: str) -> list[str]:
    """A stand-in for ``apachectl``: writes what Apache would write in its error log."""
    return ["sh", "-c", f"echo '{line}' >> {log}"]


def test_apache_reload_waits_for_the_new_configuration(pyz: str, tmp_path: Path) -> None:
    config, log = apache_config(tmp_path), tmp_path / "error.log"
    call = remote_call.apache_reload(
        pyz, str(config), str(tmp_path / "before.tar"),
        command=append_to(log, "AH00493: graceful restart; resuming normal operations"),
        start=["false"], status=["true"], error_log=str(log),
    )  # fmt: skip
    assert run(call).stdout.endswith(f">> {log}': Apache serves the new configuration\n")


def test_apache_that_dies_on_reload_gets_its_previous_configuration_back(pyz: str, tmp_path: Path) -> None:
    config, log = apache_config(tmp_path), tmp_path / "error.log"
    snapshot = tmp_path / "state" / "before.tar"
    run(remote_call.apache_snapshot(pyz, str(config), str(snapshot)))
    (config / "sites-available" / "a.conf").write_text("Listen 203.0.113.9:443\n")
    call = remote_call.apache_reload(
        pyz, str(config), str(snapshot),
        command=append_to(log, "AH00015: Unable to open logs"),
        start=append_to(log, "AH00489: Apache configured -- resuming normal operations"),
        status=["false"], error_log=str(log),
    )  # fmt: skip
    result = run(call, check=False)
    assert result.returncode == 1
    assert "AH00015: Unable to open logs" in result.stderr  # the details, before the one-line verdict
    verdict = result.stderr.splitlines()[-1]
    assert verdict.startswith("impots-helper: Apache did not come back after `sh -c 'echo ")
    assert verdict.endswith(": the previous configuration was restored and Apache started again")
    assert (config / "sites-available" / "a.conf").read_text() == "good\n"
