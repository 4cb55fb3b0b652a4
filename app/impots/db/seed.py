"""Create the admin-data tables if needed and make their rows equal to the course data (idempotent).

Command (architecture Contract 2), run from ``app/`` with the instance configuration's credentials::

    python -m impots.db.seed mysql|pgres [--check]

Prints ``seeded`` (changes made), ``unchanged`` (nothing to do) or, with ``--check``, ``would seed``.
Exit 0 = up to date; 3 = ``--check`` found changes to make; 2 = bad configuration or the database cannot
be reached, with a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from impots.db import schema
from impots.db.dao import DBMS_NAMES, DatabaseUnavailable, check_dbms, connect, fetch_rows
from impots.tax.admin_data import COURSE_ADMIN_DATA

EXIT_UP_TO_DATE = 0
EXIT_UNUSABLE = 2
EXIT_CHANGES_NEEDED = 3
# DDL may wait for a lock held by another session: more patience than a read.
STATEMENT_TIMEOUT = 30

_COLUMNS_SQL = {
    "mysql": "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns"
    " WHERE table_schema = DATABASE() AND table_name = %s",
    "pgres": "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns"
    " WHERE table_schema = current_schema() AND table_name = %s",
}
_INTEGER_TYPES = {"int", "integer"}
_DECIMAL_TYPES = {"decimal", "numeric"}


def ensure_schema(dbms: str, db: Mapping[str, Any], check_only: bool = False) -> bool:
    """Make ``tbtranches`` and ``tbconstantes`` exist with exact types and hold the course data.

    A missing table is created; a table with other columns or types (e.g. the course's FLOAT columns)
    is dropped and re-created; rows that differ from the course data are replaced. Returns True when
    something changed (or, with ``check_only``, would change; then nothing is written).
    Raises ``DatabaseUnavailable`` when the database cannot be reached or written.
    """
    check_dbms(dbms)
    wanted_rows = schema.expected_rows(COURSE_ADMIN_DATA)
    changed = False
    with connect(dbms, db, timeout=STATEMENT_TIMEOUT) as connection:
        for table, rows in wanted_rows.items():
            columns = _read_columns(connection, dbms, table)
            if columns == _expected_columns(table):
                if fetch_rows(connection, table) == rows:
                    continue
                changed = True
                if not check_only:
                    _replace_rows(connection, table, rows)
                continue
            changed = True
            if check_only:
                continue
            with connection.cursor() as cursor:
                if columns:
                    cursor.execute(f"DROP TABLE {table}")
                cursor.execute(schema.create_table_sql(table))
            _replace_rows(connection, table, rows)
        connection.commit()
    return changed


def _read_columns(connection: Any, dbms: str, table: str) -> dict[str, tuple[str, ...]]:
    """The table's columns as name -> ("integer",) or ("decimal", precision, scale); {} if absent."""
    with connection.cursor() as cursor:
        cursor.execute(_COLUMNS_SQL[dbms], (table,))
        found = cursor.fetchall()
    columns: dict[str, tuple[str, ...]] = {}
    for name, data_type, precision, scale in found:
        data_type = str(data_type).lower()
        if data_type in _INTEGER_TYPES:
            columns[str(name).lower()] = ("integer",)
        elif data_type in _DECIMAL_TYPES:
            columns[str(name).lower()] = ("decimal", int(precision), int(scale))
        else:
            columns[str(name).lower()] = (data_type,)
    return columns


def _expected_columns(table: str) -> dict[str, tuple[str, ...]]:
    columns: dict[str, tuple[str, ...]] = {"id": ("integer",)}
    for name, (_, precision, scale) in schema.COLUMNS[table].items():
        columns[name] = ("decimal", precision, scale)
    return columns


def _replace_rows(connection: Any, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
    placeholders = ", ".join(["%s"] * len(rows[0]))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")
        cursor.executemany(f"INSERT INTO {table} VALUES ({placeholders})", [tuple(row) for row in rows])


def main(argv: Sequence[str] | None = None) -> int:
    """The ``python -m impots.db.seed`` command; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m impots.db.seed", description="Create and seed the admin-data tables."
    )
    parser.add_argument("dbms", choices=DBMS_NAMES)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 3 if changes are needed")
    arguments = parser.parse_args(argv)

    from impots.config import ConfigError, load_config

    try:
        db = load_config(arguments.dbms)["db"]
    except ConfigError as error:
        print(f"impots.db.seed: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    try:
        changed = ensure_schema(arguments.dbms, db, check_only=arguments.check)
    except DatabaseUnavailable as error:
        print(
            f"impots.db.seed: {arguments.dbms} database {db['database']!r} at {db['host']}:{db['port']}"
            f" (user {db['user']!r}): {error}",
            file=sys.stderr,
        )
        return EXIT_UNUSABLE
    if not changed:
        print("unchanged")
        return EXIT_UP_TO_DATE
    if arguments.check:
        print("would seed")
        return EXIT_CHANGES_NEEDED
    print("seeded")
    return EXIT_UP_TO_DATE


if __name__ == "__main__":
    sys.exit(main())
