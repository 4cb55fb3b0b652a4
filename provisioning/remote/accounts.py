"""The app's database accounts on MariaDB/MySQL and PostgreSQL: their state, and making them.

Passwords come from the secrets file and reach the clients on stdin or in a 0600 temporary file:
never on a command line (``ps``). MariaDB's root logs in by unix socket, PostgreSQL's admin steps
run as the ``postgres`` user.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import tempfile

from .errors import DatabaseError, UsageError
from .secrets_file import read_secrets, required_secret
from .seed_check import fast_seed_status
from .sql import (
    MYSQL_HOSTS,
    mysql_account_sql,
    mysql_state_sql,
    mysql_string,
    pg_account_sql,
    pg_state_sql,
    pg_string,
)

DBMS = ("mysql", "pgres")
NO_APP_YET = 127  # seed status while the app or its venv is missing


def _run(command: list[str], sql: str, what: str) -> str:
    try:
        result = subprocess.run(command, input=sql, capture_output=True, text=True, check=False, cwd="/")
    except OSError as error:
        raise DatabaseError(f"{what} cannot run: {error}") from error
    if result.returncode != 0:
        raise DatabaseError(f"{what} failed: {result.stderr.strip()}")
    return result.stdout


def run_mysql_as_root(sql: str) -> str:
    return _run(["mysql", "--batch", "--skip-column-names"], sql, "mysql (as root, unix socket)")


def run_psql_as_postgres(sql: str) -> str:
    command = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
               "-d", "postgres"]  # fmt: skip
    return _run(command, sql, "psql (as postgres)")


def mysql_password_works(user: str, password: str) -> bool:
    with tempfile.NamedTemporaryFile("w", prefix="impots-my-", suffix=".cnf") as options:
        # NamedTemporaryFile is 0600: the password is never readable by anyone else.
        escaped = password.replace("\\", "\\\\").replace('"', '\\"')
        options.write(f'[client]\npassword="{escaped}"\n')
        options.flush()
        result = subprocess.run(
            ["mysql", f"--defaults-extra-file={options.name}", "--protocol=TCP", "-h", "127.0.0.1",
             "-u", user, "--connect-timeout=5", "-e", "SELECT 1"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    return result.returncode == 0


def pg_password_works(user: str, password: str) -> bool:
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    with tempfile.NamedTemporaryFile("w", prefix="impots-pg-", suffix=".pgpass") as passfile:
        passfile.write(f"127.0.0.1:*:*:{user}:{escaped}\n")
        passfile.flush()
        environment = {**os.environ, "PGPASSFILE": passfile.name, "PGCONNECT_TIMEOUT": "5"}
        result = subprocess.run(
            ["psql", "-X", "-w", "-h", "127.0.0.1", "-U", user, "-d", "postgres", "-Atc", "SELECT 1"],
            capture_output=True, text=True, check=False, env=environment, cwd="/",
        )  # fmt: skip
    return result.returncode == 0


def mysql_state(secrets: str, database: str, user: str) -> dict:
    """``database``, ``user`` (both hosts), ``grants`` (both hosts) and ``password`` (the secrets
    file's one logs in), each true or false."""
    row = run_mysql_as_root(mysql_state_sql(database, user)).split()
    database_count, users, grants = (int(x) for x in row)
    password = read_secrets(secrets).get("mysql_password")
    return {
        "database": database_count == 1,
        "user": users == len(MYSQL_HOSTS),
        "grants": grants == len(MYSQL_HOSTS),
        "password": bool(password) and users > 0 and mysql_password_works(user, str(password)),
    }


def mysql_ensure(secrets: str, database: str, user: str) -> str:
    password = mysql_string(required_secret(secrets, "mysql_password"))
    run_mysql_as_root(mysql_account_sql(database, user, password))
    return f"mysql: database {database} and user {user} in place"


def pg_current(database: str, user: str) -> tuple[bool, bool, bool]:
    """Whether the role exists, the database exists, and the role owns it."""
    row = run_psql_as_postgres(pg_state_sql(database, user)).strip()
    role, db, owner = (int(x) == 1 for x in row.split("|"))
    return role, db, owner


def pg_state(secrets: str, database: str, user: str) -> dict:
    """``user``, ``database``, ``owner`` and ``password`` (the secrets file's one logs in)."""
    role, db, owner = pg_current(database, user)
    password = read_secrets(secrets).get("pgres_password")
    works = bool(password) and role and pg_password_works(user, str(password))
    return {"user": role, "database": db, "owner": owner, "password": works}


def pg_ensure(secrets: str, database: str, user: str) -> str:
    password = required_secret(secrets, "pgres_password")
    role, db, owner = pg_current(database, user)
    sql = pg_account_sql(database, user, pg_string(password))
    statements = []
    if not role:
        statements.append(sql.create_role)
    elif not pg_password_works(user, password):
        statements.append(sql.alter_role)
    if not db:
        statements.append(sql.create_database)
    elif not owner:
        statements.append(sql.alter_owner)
    if statements:
        run_psql_as_postgres("\n".join(statements) + "\n")
    return f"postgresql: database {database} owned by {user} in place"


def seed_status(venv: str, app: str, dbms: str, database: str = "", user: str = "") -> int:
    """The exit code the app's ``python -m impots.db.seed <dbms> --check`` gives (127: no app or venv
    yet): read cheaply by ``seed_check`` when it can decide, else by running that check."""
    python = os.path.join(venv, "bin", "python")
    if not os.access(python, os.X_OK) or not os.path.isdir(os.path.join(app, "impots")):
        return NO_APP_YET
    if database and user:
        status = fast_seed_status(app, dbms, database, user)
        if status is not None:
            return status
    command = [python, "-m", "impots.db.seed", dbms, "--check"]
    return subprocess.run(command, cwd=app, capture_output=True, check=False).returncode


def _account_state(dbms: str, secrets: str, database: str, user: str) -> dict:
    try:
        state = mysql_state if dbms == "mysql" else pg_state
        return state(secrets, database, user)
    except DatabaseError:  # the DBMS is not reachable yet: everything is to be done
        return {}


def database_state(secrets: str, database: str, user: str, dbms: list[str], venv: str, app: str) -> dict:
    """Everything the database operations need in one call (one round trip for the deploy):
    ``{<dbms>: <account state>, "seed": {<dbms>: <seed --check exit code>}}``."""
    unknown = [name for name in dbms if name not in DBMS]
    if unknown:
        raise UsageError(f"unknown DBMS {', '.join(unknown)} (known: {', '.join(DBMS)})")
    # The queries wait on other processes (clients, the app's seed check): run them side by side.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2 * len(dbms) or 1) as pool:
        accounts = {name: pool.submit(_account_state, name, secrets, database, user) for name in dbms}
        seeds = {name: pool.submit(seed_status, venv, app, name, database, user) for name in dbms}
        state: dict = {name: future.result() for name, future in accounts.items()}
        state["seed"] = {name: future.result() for name, future in seeds.items()}
    return state
