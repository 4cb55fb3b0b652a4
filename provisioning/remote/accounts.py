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
from .seeder import seeder_password
from .sql import (
    MYSQL_HOSTS,
    mysql_split_accounts_sql,
    mysql_split_state_sql,
    mysql_string,
    pg_split_grants_sql,
    pg_split_grants_state_sql,
    pg_split_roles_sql,
    pg_split_state_sql,
    pg_string,
    seeder_name,
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


def run_psql_as_postgres(sql: str, database: str = "postgres") -> str:
    command = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
               "-d", database]  # fmt: skip
    return _run(command, sql, f"psql (as postgres, in {database})")


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


def mysql_state(secrets: str, database: str, user: str, seeder_secrets: str) -> dict:
    """``database``, ``user`` (both hosts), ``grants`` (the app's account: SELECT only, on both hosts;
    the seeding account: all rights) and ``password`` (both accounts log in), each true or false."""
    row = run_mysql_as_root(mysql_split_state_sql(database, user)).split()
    database_count, users, seeders, selects, others, creates = (int(x) for x in row)
    password = read_secrets(secrets).get("mysql_password")
    seeder = seeder_password(seeder_secrets, "mysql")
    hosts = len(MYSQL_HOSTS)
    works = bool(password) and users > 0 and mysql_password_works(user, str(password))
    seeder_works = bool(seeder) and seeders > 0 and mysql_password_works(seeder_name(user), str(seeder))
    return {
        "database": database_count == 1,
        "user": users == hosts and seeders == hosts,
        "grants": selects == hosts and others == 0 and creates == hosts,
        "password": works and seeder_works,
    }


def mysql_ensure(secrets: str, database: str, user: str, seeder_secrets: str) -> str:
    password = mysql_string(required_secret(secrets, "mysql_password"))
    seeder = mysql_string(str(seeder_password(seeder_secrets, "mysql", create=True)))
    run_mysql_as_root(mysql_split_accounts_sql(database, user, password, seeder))
    return f"mysql: database {database}, reader {user} and seeder {seeder_name(user)} in place"


def pg_current(database: str, user: str) -> tuple[bool, bool, bool, bool]:
    """Whether the app's role exists, the seeding role exists, the database exists, and the seeding
    role owns it."""
    row = run_psql_as_postgres(pg_split_state_sql(database, user)).strip()
    role, seeder, db, owner = (int(x) == 1 for x in row.split("|"))
    return role, seeder, db, owner


def pg_grants_right(database: str, user: str) -> bool:
    """In the database: the app's role owns nothing, reads every table, changes none, creates
    nothing, and the seeding role's new tables are readable by it."""
    row = run_psql_as_postgres(pg_split_grants_state_sql(user), database).strip()
    owned, unreadable, writable, creates, defaults = (int(x) for x in row.split("|"))
    return (owned, unreadable, writable, creates) == (0, 0, 0, 0) and defaults > 0


def pg_state(secrets: str, database: str, user: str, seeder_secrets: str) -> dict:
    """``user`` (both roles), ``database``, ``owner`` (the seeding role; the app's role reads only)
    and ``password`` (both log in)."""
    role, seeder_role, db, owner = pg_current(database, user)
    password = read_secrets(secrets).get("pgres_password")
    seeder = seeder_password(seeder_secrets, "pgres")
    works = bool(password) and role and pg_password_works(user, str(password))
    seeder_works = bool(seeder) and seeder_role and pg_password_works(seeder_name(user), str(seeder))
    return {
        "user": role and seeder_role,
        "database": db,
        "owner": owner and pg_grants_right(database, user),
        "password": works and seeder_works,
    }


def pg_ensure(secrets: str, database: str, user: str, seeder_secrets: str) -> str:
    password = pg_string(required_secret(secrets, "pgres_password"))
    seeder = pg_string(str(seeder_password(seeder_secrets, "pgres", create=True)))
    run_psql_as_postgres(pg_split_roles_sql(database, user, password, seeder))
    run_psql_as_postgres(pg_split_grants_sql(user), database)
    return f"postgresql: database {database} owned by {seeder_name(user)}, {user} reads only"


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


def _account_state(dbms: str, secrets: str, database: str, user: str, seeder_secrets: str) -> dict:
    try:
        state = mysql_state if dbms == "mysql" else pg_state
        return state(secrets, database, user, seeder_secrets)
    except DatabaseError:  # the DBMS is not reachable yet: everything is to be done
        return {}


def database_state(
    secrets: str, database: str, user: str, dbms: list[str], venv: str, app: str, seeder_secrets: str
) -> dict:
    """Everything the database operations need in one call (one round trip for the deploy):
    ``{<dbms>: <account state>, "seed": {<dbms>: <seed --check exit code>}}``."""
    unknown = [name for name in dbms if name not in DBMS]
    if unknown:
        raise UsageError(f"unknown DBMS {', '.join(unknown)} (known: {', '.join(DBMS)})")
    # The queries wait on other processes (clients, the app's seed check): run them side by side.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2 * len(dbms) or 1) as pool:
        accounts = {
            name: pool.submit(_account_state, name, secrets, database, user, seeder_secrets) for name in dbms
        }
        seeds = {name: pool.submit(seed_status, venv, app, name, database, user) for name in dbms}
        state: dict = {name: future.result() for name, future in accounts.items()}
        state["seed"] = {name: future.result() for name, future in seeds.items()}
    return state
