"""The app's databases: MariaDB/MySQL and PostgreSQL accounts, then schema and seed data.

Passwords are read from the app's secrets file by the target helper and reach ``mysql``/``psql``
on stdin or in a 0600 temporary file: never on a command line, never in pyinfra's output.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation

from provisioning.linux.facts import HelperJson, cached_fact


def database_state_query(
    helper: str, secrets: str, database: str, user: str, dbms: list[str], venv: str, app: str
) -> dict:
    """The ``HelperJson`` arguments of the one state query the three operations below share."""
    arguments = ["db-state", secrets, database, user, "--dbms", ",".join(dbms), "--venv", venv, "--app", app]
    return {"helper": helper, "arguments": arguments}


def database_state(helper: str, secrets: str, database: str, user: str, dbms: list[str], venv: str, app: str):
    """Both DBMS and their seed status in one helper call, shared by the three operations below."""
    query = database_state_query(helper, secrets, database, user, dbms, venv, app)
    return cached_fact(HelperJson, **query) or {}


@operation()
def mysql_database(helper: str, secrets: str, database: str, user: str, dbms: list[str], venv: str, app: str):
    """
    Create the MariaDB/MySQL database and its user (``'user'@'localhost'`` and ``'user'@'127.0.0.1'``,
    all rights on the database) with the password of the secrets file; no change when all of it is
    in place and the user can log in with that password.

    + helper: target path of ``impots-helper.py``
    + secrets: target path of the app's secrets file (``mysql_password``)
    + database: database name, e.g. ``dbimpots-2019``
    + user: account name, e.g. ``admimpots``
    + dbms, venv, app: what the shared state query covers (see ``database_seeded``)
    """
    state = database_state(helper, secrets, database, user, dbms, venv, app).get("mysql", {})
    if all(state.get(k) for k in ("database", "user", "grants", "password")):
        host.noop(f"MariaDB database {database} and user {user} are already in place")
        return
    yield f"python3 {helper} mysql-ensure {secrets} {database} {user}"


@operation()
def postgresql_database(
    helper: str, secrets: str, database: str, user: str, dbms: list[str], venv: str, app: str
):
    """
    Create the PostgreSQL role (login, password of the secrets file) and its database (owned by
    it); no change when both exist, the owner is right and the role can log in over 127.0.0.1.

    + helper: target path of ``impots-helper.py``
    + secrets: target path of the app's secrets file (``pgres_password``)
    + database: database name, e.g. ``dbimpots-2019``
    + user: role name, e.g. ``admimpots``
    + dbms, venv, app: what the shared state query covers (see ``database_seeded``)
    """
    state = database_state(helper, secrets, database, user, dbms, venv, app).get("pgres", {})
    if all(state.get(k) for k in ("database", "user", "owner", "password")):
        host.noop(f"PostgreSQL database {database} owned by {user} is already in place")
        return
    yield f"python3 {helper} pg-ensure {secrets} {database} {user}"


@operation()
def database_seeded(
    helper: str,
    secrets: str,
    database: str,
    user: str,
    dbms: list[str],
    venv: str,
    app: str,
    touch: str | None = None,
):
    """
    Create the app's tables and make their rows equal to the course data with the app's own script
    (``python -m impots.db.seed <dbms>``), for each DBMS whose ``--check`` finds something to do.

    + helper, secrets, database, user: as for ``mysql_database`` (the state is read in one call)
    + dbms: ``mysql`` and/or ``pgres``
    + venv: the app's virtual environment
    + app: the app folder (current release)
    + touch: a file touched after seeding (the apps must reload to read the repaired data)
    """
    seeds = database_state(helper, secrets, database, user, dbms, venv, app).get("seed", {})
    stale = [name for name in dbms if seeds.get(name) != 0]
    if not stale:
        host.noop(f"{', '.join(dbms)} schema and data are already up to date")
        return
    for name in stale:
        yield f"cd {app} && {venv}/bin/python -m impots.db.seed {name}"
    if touch:
        yield f"touch {touch}"
