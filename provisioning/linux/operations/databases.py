"""The app's databases: MariaDB/MySQL and PostgreSQL accounts, then schema and seed data.

Passwords are read from the app's secrets file by the target helper and reach ``mysql``/``psql``
on stdin or in a 0600 temporary file: never on a command line, never in pyinfra's output.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation

from provisioning import remote_call
from provisioning.linux.facts import HelperJson, cached_fact


def database_state_query(**query) -> dict:
    """The ``HelperJson`` arguments of the one state query the three operations below share
    (``query``: helper, secrets, database, user, dbms, venv, app, seeder_secrets)."""
    return {"call": remote_call.database_state(**query)}


def database_state(**query) -> dict:
    """Both DBMS and their seed status in one helper call, shared by the three operations below."""
    return cached_fact(HelperJson, **database_state_query(**query)) or {}


def _accounts(name: str, checks: tuple[str, ...], ensure, label: str, query: dict, **shared):
    """The body both account operations share: no change when every ``checks`` key of the ``name``
    state holds, else the helper's ensure call (``ensure``: ``remote_call.mysql_ensure``/``pg_ensure``)."""
    state = database_state(**query, **shared).get(name, {})
    if all(state.get(k) for k in checks):
        database, user = query["database"], query["user"]
        host.noop(f"{label} database {database}, reader {user} and its seeder are already in place")
        return
    yield ensure(**query, seeder_secrets=shared["seeder_secrets"])


@operation()
def mysql_database(
    helper: str,
    secrets: str,
    database: str,
    user: str,
    dbms: list[str],
    venv: str,
    app: str,
    seeder_secrets: str,
):
    """
    Create the MariaDB/MySQL database, the app's user (``'user'@'localhost'`` and ``'user'@'127.0.0.1'``,
    SELECT only on the database) with the password of the secrets file, and the seeding user
    ``<user>_seed`` (all rights on the database, its password made once in ``seeder_secrets``); no
    change when all of it is in place and both log in with their passwords.

    + helper: target path of the helper zipapp (``impots-helper.pyz``)
    + secrets: target path of the app's secrets file (``mysql_password``)
    + database: database name, e.g. ``dbimpots-2019``
    + user: account name, e.g. ``admimpots``
    + dbms, venv, app: what the shared state query covers (see ``database_seeded``)
    + seeder_secrets: target path of the seeding accounts' root-only passwords file
    """
    query = {"helper": helper, "secrets": secrets, "database": database, "user": user}
    yield from _accounts(
        "mysql", ("database", "user", "grants", "password"), remote_call.mysql_ensure, "MariaDB",
        query, dbms=dbms, venv=venv, app=app, seeder_secrets=seeder_secrets,
    )  # fmt: skip


@operation()
def postgresql_database(
    helper: str,
    secrets: str,
    database: str,
    user: str,
    dbms: list[str],
    venv: str,
    app: str,
    seeder_secrets: str,
):
    """
    Create the PostgreSQL roles: the app's (login, password of the secrets file, SELECT only on the
    tables of ``public``, now and later) and ``<user>_seed`` (owns the database and the tables, its
    password made once in ``seeder_secrets``); no change when all of it holds and both log in.

    + helper: target path of the helper zipapp (``impots-helper.pyz``)
    + secrets: target path of the app's secrets file (``pgres_password``)
    + database: database name, e.g. ``dbimpots-2019``
    + user: role name, e.g. ``admimpots``
    + dbms, venv, app: what the shared state query covers (see ``database_seeded``)
    + seeder_secrets: target path of the seeding accounts' root-only passwords file
    """
    query = {"helper": helper, "secrets": secrets, "database": database, "user": user}
    yield from _accounts(
        "pgres", ("database", "user", "owner", "password"), remote_call.pg_ensure, "PostgreSQL",
        query, dbms=dbms, venv=venv, app=app, seeder_secrets=seeder_secrets,
    )  # fmt: skip


@operation()
def database_seeded(
    helper: str,
    secrets: str,
    database: str,
    user: str,
    dbms: list[str],
    venv: str,
    app: str,
    seeder_secrets: str,
    touch: str | None = None,
):
    """
    Create the app's tables and make their rows equal to the course data with the app's own script
    (``python -m impots.db.seed <dbms>``, run by the helper as the seeding account), for each DBMS
    whose ``--check`` finds something to do.

    + helper, secrets, database, user: as for ``mysql_database`` (the state is read in one call)
    + dbms: ``mysql`` and/or ``pgres``
    + venv: the app's virtual environment
    + app: the app folder (current release)
    + seeder_secrets: the seeding accounts' passwords file
    + touch: a file touched after seeding (the apps must reload to read the repaired data)
    """
    query = {"helper": helper, "secrets": secrets, "database": database, "user": user, "venv": venv}
    seeds = database_state(**query, dbms=dbms, app=app, seeder_secrets=seeder_secrets).get("seed", {})
    stale = [name for name in dbms if seeds.get(name) != 0]
    if not stale:
        host.noop(f"{', '.join(dbms)} schema and data are already up to date")
        return
    for name in stale:
        yield remote_call.db_seed(helper, secrets, seeder_secrets, name, user, venv, app)
    if touch:
        yield f"touch {touch}"
