"""Database account SQL as text: MariaDB/MySQL and PostgreSQL, for both backends.

Pure functions, no client run here. The Linux target runs this text with ``mysql``/``psql`` (``accounts``);
the Windows deploy imports the same builders and ships their text in its PowerShell scripts, with
``@PASSWORD@`` as ``password_sql`` (the script puts the quoted password in on the host), so both
platforms create the same accounts.
"""

from __future__ import annotations

from typing import NamedTuple

# The app connects over TCP to 127.0.0.1, tools over the socket as localhost: one account for each.
MYSQL_HOSTS = ("localhost", "127.0.0.1")


def mysql_string(value: str) -> str:
    """A MariaDB/MySQL string literal (backslash escapes are on by default)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def mysql_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def pg_string(value: str) -> str:
    """A PostgreSQL string literal (standard_conforming_strings: only quotes are doubled)."""
    return "'" + value.replace("'", "''") + "'"


def pg_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def mysql_account_sql(database: str, user: str, password_sql: str) -> str:
    """The statements making the database and the user (both hosts, all rights on the database) with
    ``password_sql`` (an SQL literal, or a placeholder the Windows script replaces) as the password.
    Idempotent: run again, they only set the password again."""
    db = mysql_identifier(database)
    statements = [f"CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4;"]
    for host in MYSQL_HOSTS:
        account = f"{mysql_string(user)}@{mysql_string(host)}"
        statements += [
            f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {password_sql};",
            f"ALTER USER {account} IDENTIFIED BY {password_sql};",
            f"GRANT ALL PRIVILEGES ON {db}.* TO {account};",
        ]
    statements.append("FLUSH PRIVILEGES;")
    return "\n".join(statements) + "\n"


def mysql_state_sql(database: str, user: str) -> str:
    """One row: the database count (0/1), the user's host count, the hosts with CREATE on the database."""
    db, name = mysql_string(database), mysql_string(user)
    hosts = ", ".join(mysql_string(host) for host in MYSQL_HOSTS)
    grantees = ", ".join(mysql_string(f"'{user}'@'{host}'") for host in MYSQL_HOSTS)
    return (
        f"SELECT (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME={db}),"
        f" (SELECT COUNT(*) FROM mysql.user WHERE User={name} AND Host IN ({hosts})),"
        " (SELECT COUNT(DISTINCT GRANTEE) FROM information_schema.SCHEMA_PRIVILEGES"
        f"  WHERE TABLE_SCHEMA={db} AND PRIVILEGE_TYPE='CREATE' AND GRANTEE IN ({grantees}));\n"
    )


def pg_state_sql(database: str, user: str) -> str:
    """One row ``role|database|owner``, each 1 or 0 (``psql -At``)."""
    role, db = pg_string(user), pg_string(database)
    return (
        f"SELECT (SELECT count(*) FROM pg_roles WHERE rolname = {role}),"
        f" (SELECT count(*) FROM pg_database WHERE datname = {db}),"
        " (SELECT count(*) FROM pg_database d JOIN pg_roles r ON d.datdba = r.oid"
        f" WHERE d.datname = {db} AND r.rolname = {role});\n"
    )


class PgAccountSql(NamedTuple):
    """The statements a PostgreSQL account is made or repaired with; the state query picks among them."""

    create_role: str
    alter_role: str
    create_database: str
    alter_owner: str


def pg_account_sql(database: str, user: str, password_sql: str) -> PgAccountSql:
    role, db = pg_identifier(user), pg_identifier(database)
    return PgAccountSql(
        create_role=f"CREATE ROLE {role} LOGIN PASSWORD {password_sql};",
        alter_role=f"ALTER ROLE {role} WITH LOGIN PASSWORD {password_sql};",
        create_database=f"CREATE DATABASE {db} OWNER {role} ENCODING 'UTF8' TEMPLATE template0;",
        alter_owner=f"ALTER DATABASE {db} OWNER TO {role};",
    )
