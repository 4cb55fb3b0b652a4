"""The app's databases: MariaDB/MySQL and PostgreSQL accounts, then schema and seed data.

Passwords are read from the app's secrets file by the target helper and reach ``mysql``/``psql``
on stdin or in a 0600 temporary file: never on a command line, never in pyinfra's output.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation

from provisioning.linux.facts import HelperJson, SeedStatus


@operation()
def mysql_database(helper: str, secrets: str, database: str, user: str):
    """
    Create the MariaDB/MySQL database and its user (``'user'@'localhost'`` and ``'user'@'127.0.0.1'``,
    all rights on the database) with the password of the secrets file; no change when all of it is
    in place and the user can log in with that password.

    + helper: target path of ``impots-helper.py``
    + secrets: target path of the app's secrets file (``mysql_password``)
    + database: database name, e.g. ``dbimpots-2019``
    + user: account name, e.g. ``admimpots``
    """
    state = host.get_fact(HelperJson, helper=helper, arguments=["mysql-state", secrets, database, user])
    if state and all(state.get(k) for k in ("database", "user", "grants", "password")):
        host.noop(f"MariaDB database {database} and user {user} are already in place")
        return
    yield f"python3 {helper} mysql-ensure {secrets} {database} {user}"


@operation()
def postgresql_database(helper: str, secrets: str, database: str, user: str):
    """
    Create the PostgreSQL role (login, password of the secrets file) and its database (owned by
    it); no change when both exist, the owner is right and the role can log in over 127.0.0.1.

    + helper: target path of ``impots-helper.py``
    + secrets: target path of the app's secrets file (``pgres_password``)
    + database: database name, e.g. ``dbimpots-2019``
    + user: role name, e.g. ``admimpots``
    """
    state = host.get_fact(HelperJson, helper=helper, arguments=["pg-state", secrets, database, user])
    if state and all(state.get(k) for k in ("database", "user", "owner", "password")):
        host.noop(f"PostgreSQL database {database} owned by {user} is already in place")
        return
    yield f"python3 {helper} pg-ensure {secrets} {database} {user}"


@operation()
def database_seeded(venv: str, app: str, dbms: str):
    """
    Create the app's tables and make their rows equal to the course data with the app's own script
    (``python -m impots.db.seed <dbms>``), only when its ``--check`` finds something to do.

    + venv: the app's virtual environment
    + app: the app folder (current release)
    + dbms: ``mysql`` or ``pgres``
    """
    if host.get_fact(SeedStatus, venv=venv, app=app, dbms=dbms) == 0:
        host.noop(f"{dbms} schema and data are already up to date")
        return
    yield f"cd {app} && {venv}/bin/python -m impots.db.seed {dbms}"
