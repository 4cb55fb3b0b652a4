"""The helper's cheap seed check (``provisioning.remote.seed_check``) against real MariaDB and PostgreSQL:
it must give the app's own ``--check`` answer (0 up to date, 3 to seed) or stay undecided (None)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app"
sys.path.insert(0, str(APP))

from impots.db import schema  # noqa: E402
from impots.tax.admin_data import COURSE_ADMIN_DATA  # noqa: E402


def fast_status(dbms: str, database: str, user: str) -> int | None:
    """As the helper runs it on a target: a fresh Python (the check loads the app's modules its own way)."""
    code = (
        "from provisioning.remote.seed_check import fast_seed_status; "
        f"print(fast_seed_status({str(APP)!r}, {dbms!r}, {database!r}, {user!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return None if result.stdout.strip() == "None" else int(result.stdout)


def seed_sql() -> str:
    """The tables and rows ``impots.db.seed`` writes, as SQL valid on both DBMS."""
    statements = [schema.create_table_sql(table) for table in schema.COLUMNS]
    for table, rows in schema.expected_rows(COURSE_ADMIN_DATA).items():
        for row in rows:
            statements.append(f"INSERT INTO {table} VALUES ({', '.join(str(value) for value in row)})")
    return ";\n".join(statements) + ";\n"


def mysql(sql: str, database: str = "") -> None:
    subprocess.run(["mysql", *(["-D", database] if database else [])], input=sql, text=True, check=True)


def psql(sql: str, database: str = "postgres") -> None:
    command = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database]
    subprocess.run(command, input=sql, text=True, check=True, cwd="/", capture_output=True)


@pytest.fixture
def names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"impots-seedcheck-{suffix}", f"impots_seedcheck_{suffix}"


@pytest.fixture
def mysql_database(names: tuple[str, str]) -> Iterator[str]:
    database, _ = names
    mysql(f"CREATE DATABASE `{database}`;")
    yield database
    mysql(f"DROP DATABASE IF EXISTS `{database}`;")


@pytest.fixture
def pg_database(names: tuple[str, str]) -> Iterator[tuple[str, str]]:
    database, role = names
    psql(f'CREATE ROLE {role}; CREATE DATABASE "{database}";')
    yield database, role
    psql(f'DROP DATABASE IF EXISTS "{database}"; DROP ROLE IF EXISTS {role};')


def first_bracket_limit_changed() -> str:
    return f"UPDATE {schema.BRACKETS_TABLE} SET limite = limite + 1 WHERE id = 1;"


def test_mysql_seed_check(mysql_database: str, names: tuple[str, str]) -> None:
    user = names[1]
    assert fast_status("mysql", mysql_database, user) == 3  # no tables yet
    mysql(seed_sql(), mysql_database)
    assert fast_status("mysql", mysql_database, user) == 0
    mysql(first_bracket_limit_changed(), mysql_database)
    assert fast_status("mysql", mysql_database, user) == 3
    mysql(f"DROP TABLE {schema.CONSTANTS_TABLE};", mysql_database)
    assert fast_status("mysql", mysql_database, user) == 3
    assert fast_status("mysql", mysql_database + "-absent", user) is None  # cannot connect: undecided


def test_postgresql_seed_check(pg_database: tuple[str, str]) -> None:
    database, role = pg_database
    assert fast_status("pgres", database, role) == 3  # no tables yet
    psql(seed_sql() + f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};", database)
    assert fast_status("pgres", database, role) == 0
    psql(first_bracket_limit_changed(), database)
    assert fast_status("pgres", database, role) == 3
    psql(f"ALTER TABLE {schema.CONSTANTS_TABLE} ALTER COLUMN plafond_qf_demi_part TYPE REAL;", database)
    assert fast_status("pgres", database, role) == 3  # the course's FLOAT-like column: re-made
    assert fast_status("pgres", database + "-absent", role) is None
