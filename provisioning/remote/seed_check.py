"""A cheap ``impots.db.seed --check``: the two admin-data tables read by one client call per DBMS.

The app's own check imports its venv (SQLAlchemy-sized imports: about 1 s of CPU per DBMS and host),
which dominated a no-change run over a fleet. Here the helper's Python loads only the app's schema and
course-data modules (stdlib-only) from the deployed release, and ``mysql`` (root, unix socket) or
``psql`` (as ``postgres``, then ``SET ROLE`` to the app's role so its schema is the one searched) print
the columns and rows; they are compared with what the seed would write, as the seed compares them.
The answer is the seed's exit code (0 up to date, 3 to seed); ``None`` when this check cannot decide
(a client missing or failing, a database absent, an app release without these modules): the caller
then runs the app's own ``--check``, which stays the reference.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import types
from decimal import Decimal, InvalidOperation
from typing import Any

from .sql import pg_identifier

EXIT_UP_TO_DATE = 0
EXIT_CHANGES_NEEDED = 3
_INTEGER_TYPES = {"int", "integer"}
_DECIMAL_TYPES = {"decimal", "numeric"}
_IMPORT_LOCK = threading.Lock()  # database_state checks both DBMS in threads: one import of the modules


def course_modules(app: str) -> tuple[Any, Any]:
    """The release's ``impots.db.schema`` and ``impots.tax.admin_data``, without ``impots/__init__``
    (it imports Flask, which only the venv has): empty package objects point at the release's folders."""
    with _IMPORT_LOCK:
        return _load_course_modules(os.path.join(app, "impots"))


def _load_course_modules(root: str) -> tuple[Any, Any]:
    import importlib

    if "impots.db.schema" in sys.modules:
        return sys.modules["impots.db.schema"], sys.modules["impots.tax.admin_data"]
    for name, folder in (("impots", root), ("impots.tax", f"{root}/tax"), ("impots.db", f"{root}/db")):
        package = types.ModuleType(name)
        package.__path__ = [folder]
        sys.modules[name] = package
    schema = importlib.import_module("impots.db.schema")
    admin_data = importlib.import_module("impots.tax.admin_data")
    return schema, admin_data


def _run(command: list[str], sql: str) -> tuple[int, list[list[str]]] | None:
    """The client's exit code and the rows it printed (also those printed before a failing statement)."""
    try:
        result = subprocess.run(command, input=sql, capture_output=True, text=True, check=False, cwd="/")
    except OSError:
        return None
    return result.returncode, [line.split("\t") for line in result.stdout.splitlines() if line]


def _client(dbms: str, database: str, user: str) -> tuple[list[str], str, str]:
    """(command, SQL prefix, the schema expression the app's tables live in)."""
    if dbms == "mysql":
        return ["mysql", "--batch", "--skip-column-names", "-D", database], "", "DATABASE()"
    command = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-At", "-F", "\t",
               "-v", "ON_ERROR_STOP=1", "-d", database]  # fmt: skip
    return command, f"SET ROLE {pg_identifier(user)};\n", "current_schema()"


def _columns(found: list[list[str]]) -> dict[str, dict[str, tuple]]:
    # As impots.db.seed._read_columns: integer, decimal(precision, scale), or the type's name.
    tables: dict[str, dict[str, tuple]] = {}
    for table, name, data_type, precision, scale in found:
        kind = data_type.lower()
        if kind in _INTEGER_TYPES:
            column: tuple = ("integer",)
        elif kind in _DECIMAL_TYPES:
            column = ("decimal", int(precision), int(scale))
        else:
            column = (kind,)
        tables.setdefault(table.lower(), {})[name.lower()] = column
    return tables


def _expected_columns(schema: Any, table: str) -> dict[str, tuple]:
    columns: dict[str, tuple] = {"id": ("integer",)}
    for name, (_, precision, scale) in schema.COLUMNS[table].items():
        columns[name] = ("decimal", precision, scale)
    return columns


def _rows(found: list[list[str]]) -> dict[str, list[tuple]]:
    tables: dict[str, list[tuple]] = {}
    for table, row_id, *values in found:
        tables.setdefault(table, []).append((int(row_id), *(Decimal(value) for value in values)))
    return tables


def fast_seed_status(app: str, dbms: str, database: str, user: str) -> int | None:
    """0 when both tables have the seed's columns and rows, 3 when not; None: undecided (see above).
    One client call: the columns, then the rows (that part fails when a column is missing, which the
    columns already tell)."""
    try:
        schema, admin_data = course_modules(app)
        wanted = schema.expected_rows(admin_data.COURSE_ADMIN_DATA)
        command, prefix, current = _client(dbms, database, user)
        names = ", ".join(f"'{table}'" for table in wanted)
        columns_sql = (
            "SELECT 'C', table_name, column_name, data_type, numeric_precision, numeric_scale"
            f" FROM information_schema.columns WHERE table_schema = {current} AND table_name IN ({names});\n"
        )
        rows_sql = "".join(
            f"SELECT 'R', '{table}', id, {', '.join(schema.COLUMNS[table])} FROM {table} ORDER BY id;\n"
            for table in wanted
        )
        # 'E' is printed only when the columns were read: a client that could not connect prints nothing.
        answer = _run(command, prefix + columns_sql + "SELECT 'E';\n" + rows_sql)
        if answer is None or ["E"] not in answer[1]:
            return None
        returncode, lines = answer
        columns = _columns([line[1:] for line in lines if line[0] == "C"])
        if any(columns.get(table) != _expected_columns(schema, table) for table in wanted):
            return EXIT_CHANGES_NEEDED
        if returncode != 0:
            return None
        current_rows = _rows([line[1:] for line in lines if line[0] == "R"])
        up_to_date = all(current_rows.get(table, []) == list(wanted[table]) for table in wanted)
        return EXIT_UP_TO_DATE if up_to_date else EXIT_CHANGES_NEEDED
    except (ImportError, AttributeError, KeyError, TypeError, ValueError, InvalidOperation, SyntaxError):
        return None  # a release whose modules differ from what this check knows: the app decides
