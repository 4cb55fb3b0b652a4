"""The seeding account: its password (root-only), and the app's seed script run with it.

The app's own accounts may only read (``sql.mysql_split_accounts_sql``, ``sql.pg_split_grants_sql``);
the schema and the course data are written by ``<user>_seed``, whose passwords live in a root-only file
of the state folder (``seeder-secrets.json``, 0600), never in the app's secrets file. The seed script
(``python -m impots.db.seed``) reads its credentials from an instance folder: it runs with a root-only
temporary one holding the app's ``impots.json`` with the seeding account in place of the app's, so the
app's code is used unchanged and no password reaches a command line.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile

from .errors import DatabaseError, SecretsError
from .secrets_file import read_secrets
from .sql import seeder_name

SEED_EXIT_CHANGES_NEEDED = 3


def seeder_password(path: str, dbms: str, create: bool = False) -> str | None:
    """The seeding account's password for ``dbms`` (``mysql``/``pgres``); made once when ``create``."""
    key = f"{dbms}_password"
    values = read_secrets(path)
    if values.get(key) or not create:
        return values.get(key) or None
    values[key] = secrets.token_urlsafe(32)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".seeder-")  # 0600, root's
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(values, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(temporary, path)
    return values[key]


def _seed_instance(folder: str, app_config: str, dbms: str, user: str, password: str) -> None:
    try:
        with open(app_config, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as error:
        raise SecretsError(f"cannot read the app's configuration {app_config}: {error}") from error
    databases = config.setdefault("databases", {})
    databases.setdefault(dbms, {})["user"] = seeder_name(user)
    config["secrets_file"] = "secrets.json"
    for name, content in (("impots.json", config), ("secrets.json", {f"{dbms}_password": password})):
        # 0600 like the folder: the app refuses a secrets file anyone else may read.
        descriptor = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(content, handle)


def seed(secrets_path: str, seeder_secrets: str, dbms: str, user: str, venv: str, app: str) -> str:
    """Run the app's ``python -m impots.db.seed <dbms>`` as the seeding account."""
    password = seeder_password(seeder_secrets, dbms)
    if not password:
        raise SecretsError(f"{seeder_secrets} has no {dbms}_password: the accounts step has not run")
    app_config = os.path.join(os.path.dirname(secrets_path), "impots.json")
    folder = tempfile.mkdtemp(prefix="impots-seed-", dir=os.path.dirname(seeder_secrets))  # 0700
    try:
        _seed_instance(folder, app_config, dbms, user, password)
        environment = {**os.environ, "IMPOTS_INSTANCE_PATH": folder}
        command = [os.path.join(venv, "bin", "python"), "-m", "impots.db.seed", dbms]
        result = subprocess.run(
            command, cwd=app, env=environment, capture_output=True, text=True, check=False
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if result.returncode != 0:
        raise DatabaseError(f"impots.db.seed {dbms} failed: {result.stderr.strip()}", details=result.stdout)
    return f"{dbms}: {result.stdout.strip()} as {seeder_name(user)}"
