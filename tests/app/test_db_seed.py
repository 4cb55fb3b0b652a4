"""The schema-and-seed step on both real servers, and the ``python -m impots.db.seed`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from impots.db.dao import DatabaseUnavailable, connect, load_admin_data
from impots.db.seed import ensure_schema
from impots.tax import COURSE_ADMIN_DATA

DBMS = ("mysql", "pgres")
APP_DIR = Path(__file__).resolve().parents[2] / "app"


def _execute(dbms: str, db: dict[str, Any], *statements: str) -> None:
    with connect(dbms, db) as connection:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        connection.commit()


def _column_types(dbms: str, db: dict[str, Any], table: str) -> dict[str, str]:
    schema = "DATABASE()" if dbms == "mysql" else "current_schema()"
    with connect(dbms, db) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            f" WHERE table_schema = {schema} AND table_name = %s",
            (table,),
        )
        return {name: data_type for name, data_type in cursor.fetchall()}


def _tables(dbms: str, db: dict[str, Any]) -> set[str]:
    schema = "DATABASE()" if dbms == "mysql" else "current_schema()"
    with connect(dbms, db) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT table_name FROM information_schema.tables WHERE table_schema = {schema}")
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.parametrize("dbms", DBMS)
def test_seed_creates_then_is_unchanged(dbms: str, database_factory: Any) -> None:
    db = database_factory.create(dbms, seed=False)
    assert ensure_schema(dbms, db, check_only=True) is True
    assert _tables(dbms, db) == set(), "--check must not create anything"

    assert ensure_schema(dbms, db) is True
    assert _tables(dbms, db) == {"tbtranches", "tbconstantes"}
    assert ensure_schema(dbms, db) is False
    assert ensure_schema(dbms, db, check_only=True) is False
    assert load_admin_data(dbms, db) == COURSE_ADMIN_DATA
    exact = {"decimal", "numeric"}
    assert set(_column_types(dbms, db, "tbtranches").values()) - {"int", "integer"} <= exact
    assert set(_column_types(dbms, db, "tbconstantes").values()) - {"int", "integer"} <= exact


@pytest.mark.parametrize("dbms", DBMS)
def test_seed_repairs_tampered_rows(dbms: str, database_factory: Any) -> None:
    db = database_factory.create(dbms)
    _execute(
        dbms,
        db,
        "UPDATE tbtranches SET coeffn = 13913.7 WHERE id = 4",
        "UPDATE tbconstantes SET plafond_qf_demi_part = 1500",
        "INSERT INTO tbtranches VALUES (6, 1, 1, 1)",
    )
    with pytest.raises(DatabaseUnavailable, match="limites"):
        load_admin_data(dbms, db)
    assert ensure_schema(dbms, db, check_only=True) is True
    assert ensure_schema(dbms, db) is True
    assert ensure_schema(dbms, db) is False
    assert load_admin_data(dbms, db) == COURSE_ADMIN_DATA


@pytest.mark.parametrize("dbms", DBMS)
def test_seed_replaces_the_course_float_columns(dbms: str, database_factory: Any) -> None:
    db = database_factory.create(dbms, seed=False)
    float_type = "FLOAT" if dbms == "mysql" else "REAL"  # single precision, as the course's MySQL tables
    _execute(
        dbms,
        db,
        f"CREATE TABLE tbtranches (id INTEGER PRIMARY KEY, limite {float_type} NOT NULL,"
        f" coeffr {float_type} NOT NULL, coeffn {float_type} NOT NULL)",
        "INSERT INTO tbtranches VALUES (1, 9964, 0, 0), (2, 27519, 0.14, 1394.96), (3, 73779, 0.3, 5798),"
        " (4, 156244, 0.41, 13913.69), (5, 0, 0.45, 20163.45)",
    )
    assert ensure_schema(dbms, db) is True
    assert set(_column_types(dbms, db, "tbtranches").values()) - {"int", "integer"} <= {"decimal", "numeric"}
    assert load_admin_data(dbms, db).coeffn[3] == COURSE_ADMIN_DATA.coeffn[3]
    assert ensure_schema(dbms, db) is False


@pytest.mark.parametrize("dbms", DBMS)
def test_seed_with_wrong_password_is_unavailable(dbms: str, request: pytest.FixtureRequest) -> None:
    db = {**request.getfixturevalue(f"{dbms}_db"), "password": "wrong"}
    with pytest.raises(DatabaseUnavailable):
        ensure_schema(dbms, db, check_only=True)


# ---- the command ------------------------------------------------------------------------------------


def _write_instance(folder: Path, dbms: str, db: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"databases": {dbms: {key: db[key] for key in ("host", "port", "database", "user")}}}
    (folder / "impots.json").write_text(json.dumps(settings), encoding="utf-8")
    secrets_file = folder / "secrets.json"
    secrets_file.write_text(json.dumps({f"{dbms}_password": db["password"]}), encoding="utf-8")
    os.chmod(secrets_file, 0o640)
    return folder


def _seed_command(folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "IMPOTS_INSTANCE_PATH": str(folder)}
    environment.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-m", "impots.db.seed", *arguments],
        cwd=APP_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("dbms", DBMS)
def test_command_exit_codes(dbms: str, database_factory: Any, tmp_path: Path) -> None:
    db = database_factory.create(dbms, seed=False)
    folder = _write_instance(tmp_path / "instance", dbms, db)

    check = _seed_command(folder, dbms, "--check")
    assert (check.returncode, check.stdout.strip()) == (3, "would seed"), check.stderr
    first = _seed_command(folder, dbms)
    assert (first.returncode, first.stdout.strip()) == (0, "seeded"), first.stderr
    second = _seed_command(folder, dbms)
    assert (second.returncode, second.stdout.strip()) == (0, "unchanged"), second.stderr
    check = _seed_command(folder, dbms, "--check")
    assert (check.returncode, check.stdout.strip()) == (0, "unchanged"), check.stderr
    assert load_admin_data(dbms, db) == COURSE_ADMIN_DATA


@pytest.mark.parametrize("dbms", DBMS)
def test_command_with_database_down(
    dbms: str, request: pytest.FixtureRequest, tmp_path: Path, free_tcp_port: int
) -> None:
    port = free_tcp_port  # nothing listens there
    db = {**request.getfixturevalue(f"{dbms}_db"), "port": port}
    result = _seed_command(_write_instance(tmp_path / "instance", dbms, db), dbms)
    print(result.stderr)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert f"127.0.0.1:{port}" in lines[0]
    assert "refused" in lines[0].lower()


def test_command_with_bad_configuration(tmp_path: Path) -> None:
    folder = tmp_path / "instance"
    folder.mkdir()
    (folder / "impots.json").write_text('{"prefix_url": "do"}', encoding="utf-8")
    result = _seed_command(folder, "pgres")
    assert result.returncode == 2
    assert "impots.json: prefix_url" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_command_with_bad_arguments(tmp_path: Path) -> None:
    result = _seed_command(tmp_path, "oracle")
    assert result.returncode == 2
    assert "oracle" in result.stderr
