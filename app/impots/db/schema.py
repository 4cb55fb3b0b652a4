"""The two tables of spec §3.2 with exact numeric types, and the rows they must hold (spec §3.3).

The course declared FLOAT columns; MySQL's single-precision FLOAT turns 13913.69 into 13913.7. DECIMAL /
NUMERIC (the same name and meaning on both DBMS) keep every value exact.
"""

from __future__ import annotations

from decimal import Decimal

from impots.tax.admin_data import BRACKET_COUNT, CONSTANT_NAMES, AdminData

BRACKETS_TABLE = "tbtranches"
CONSTANTS_TABLE = "tbconstantes"

# column -> (SQL type, numeric precision, numeric scale); id is an INTEGER primary key.
AMOUNT = ("DECIMAL(12,2)", 12, 2)
RATE = ("DECIMAL(6,4)", 6, 4)
COLUMNS: dict[str, dict[str, tuple[str, int, int]]] = {
    BRACKETS_TABLE: {"limite": AMOUNT, "coeffr": RATE, "coeffn": AMOUNT},
    CONSTANTS_TABLE: dict.fromkeys(CONSTANT_NAMES, AMOUNT),
}


def create_table_sql(table: str) -> str:
    """``CREATE TABLE`` for ``table``; the same text is valid on MariaDB/MySQL and PostgreSQL."""
    columns = ", ".join(f"{name} {sql_type} NOT NULL" for name, (sql_type, _, _) in COLUMNS[table].items())
    return f"CREATE TABLE {table} (id INTEGER NOT NULL PRIMARY KEY, {columns})"


def expected_rows(admin: AdminData) -> dict[str, list[tuple[Decimal | int, ...]]]:
    """The rows (id first, in id order) each table must hold to store ``admin``."""
    brackets = [
        (index + 1, admin.limites[index], admin.coeffr[index], admin.coeffn[index])
        for index in range(BRACKET_COUNT)
    ]
    constants = [(1, *(getattr(admin, name) for name in CONSTANT_NAMES))]
    return {BRACKETS_TABLE: brackets, CONSTANTS_TABLE: constants}


def select_sql(table: str) -> str:
    """All rows of ``table``, id first, in id order (the course forgot ORDER BY, spec §12.8)."""
    return f"SELECT id, {', '.join(COLUMNS[table])} FROM {table} ORDER BY id"
