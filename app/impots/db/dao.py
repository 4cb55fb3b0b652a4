"""Read the admin data from the database (spec §3.5), and the connection helper shared with the seed.

``db`` mappings are ``{"host", "port", "database", "user", "password"}`` (``load_config(...)["db"]``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from impots.db import schema
from impots.tax.admin_data import CONSTANT_NAMES, AdminData

DBMS_NAMES = ("mysql", "pgres")
# A down or silent server must not hang a request or a start-up: give up after this many seconds.
CONNECT_TIMEOUT = 3


class DatabaseUnavailable(Exception):
    """The database cannot be reached or read; the message is the driver's text (on one line)."""


def _one_line(error: BaseException) -> str:
    return re.sub(r"\s+", " ", str(error)).strip() or type(error).__name__


def _driver_errors(dbms: str) -> tuple[type[BaseException], ...]:
    if dbms == "mysql":
        import pymysql

        return (pymysql.MySQLError, OSError)
    import psycopg2

    return (psycopg2.Error, OSError)


def check_dbms(dbms: str) -> None:
    """Raise ValueError naming ``dbms`` unless it is ``"mysql"`` or ``"pgres"``."""
    if dbms not in DBMS_NAMES:
        raise ValueError(f"unknown dbms {dbms!r}: expected one of {', '.join(DBMS_NAMES)}")


@contextmanager
def connect(dbms: str, db: Mapping[str, Any], timeout: int = CONNECT_TIMEOUT) -> Iterator[Any]:
    """A DB-API connection to ``db``, closed on exit; every driver error becomes DatabaseUnavailable.

    ``timeout`` bounds the connection (``CONNECT_TIMEOUT``) and each statement: PyMySQL reads the
    server's greeting with its read timeout, so that one must be short too for a silent server.
    """
    check_dbms(dbms)
    errors = _driver_errors(dbms)
    try:
        if dbms == "mysql":
            import pymysql

            connection = pymysql.connect(
                host=db["host"],
                port=int(db["port"]),
                user=db["user"],
                password=db.get("password") or "",
                database=db["database"],
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=timeout,
                write_timeout=timeout,
                charset="utf8mb4",
            )
        else:
            import psycopg2

            connection = psycopg2.connect(
                host=db["host"],
                port=int(db["port"]),
                user=db["user"],
                password=db.get("password"),
                dbname=db["database"],
                connect_timeout=CONNECT_TIMEOUT,
                options=f"-c statement_timeout={timeout * 1000}",
            )
    except errors as error:
        raise DatabaseUnavailable(_one_line(error)) from error
    try:
        yield connection
    except errors as error:
        raise DatabaseUnavailable(_one_line(error)) from error
    finally:
        try:
            connection.close()
        except errors:
            pass  # the connection is already broken; the original error matters more


def fetch_rows(connection: Any, table: str) -> list[tuple[Any, ...]]:
    """All rows of one of the schema's tables, id first, in id order."""
    with connection.cursor() as cursor:
        cursor.execute(schema.select_sql(table))
        return [tuple(row) for row in cursor.fetchall()]


def load_admin_data(dbms: str, db: Mapping[str, Any]) -> AdminData:
    """Read the bracket table and the constants (spec §3.5), brackets in ``id`` order.

    Raises ``DatabaseUnavailable`` within about ``CONNECT_TIMEOUT`` seconds when the server is down or
    the credentials are wrong, and also when the tables are missing or hold invalid data.
    """
    with connect(dbms, db) as connection:
        brackets = fetch_rows(connection, schema.BRACKETS_TABLE)
        constants = fetch_rows(connection, schema.CONSTANTS_TABLE)
    if not constants:
        raise DatabaseUnavailable(f"table {schema.CONSTANTS_TABLE} is empty")
    columns = list(zip(*brackets, strict=True)) if brackets else [(), (), (), ()]
    try:
        return AdminData(
            limites=columns[1],
            coeffr=columns[2],
            coeffn=columns[3],
            **dict(zip(CONSTANT_NAMES, constants[0][1:], strict=True)),
        )
    except ValueError as error:
        raise DatabaseUnavailable(f"invalid admin data in the database: {error}") from error
