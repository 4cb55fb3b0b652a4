"""The controller's side of the target helper (``provisioning/remote/``): the zipapp shipped to Linux
targets, and one typed function per remote command returning the pyinfra command that runs it.

A call is ``python3 <helper> <command> '<JSON object>'``: the arguments travel as one shell-quoted
JSON argument, so no value (a path, a URL, a page text) is ever split, expanded or run by the
target's shell. No secret is ever an argument: the helper reads them from the secrets file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from importlib import resources
from pathlib import Path

from pyinfra.api import QuoteString, StringCommand

from provisioning.artifact import ARTIFACTS_DIR

HELPER_NAME = "impots-helper.pyz"
TARGET_PYTHON = "python3"  # the target's system Python (3.9 or newer): the helper runs before any venv

# Fixed entry metadata, as for the app artifact: the same sources always give the same bytes.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)
_SHEBANG = b"#!/usr/bin/env python3\n"
_BOOTSTRAP = b"import sys\n\nfrom provisioning.remote.__main__ import main\n\nsys.exit(main())\n"


def helper_zipapp_bytes() -> bytes:
    """The zipapp: ``provisioning/remote/*.py`` under an empty ``provisioning`` package, and a
    ``__main__.py`` that runs its command line."""
    package = resources.files("provisioning.remote")
    sources = sorted(
        (entry.name, entry.read_bytes()) for entry in package.iterdir() if entry.name.endswith(".py")
    )
    entries = [
        ("__main__.py", _BOOTSTRAP),
        ("provisioning/__init__.py", b""),
        *((f"provisioning/remote/{name}", data) for name, data in sources),
    ]
    buffer = io.BytesIO()
    buffer.write(_SHEBANG)
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.create_system = 3  # unix: the mode below is read as such
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=9)
    return buffer.getvalue()


def build_helper(output_dir: Path | None = None) -> Path:
    """Write ``.artifacts/impots-helper.pyz`` when its bytes changed, and return its path."""
    output_dir = output_dir or ARTIFACTS_DIR
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / HELPER_NAME
    data = helper_zipapp_bytes()
    if path.exists() and path.read_bytes() == data:
        return path  # untouched: concurrent deploys keep reading the same file
    # Written under a temporary name then renamed: a deploy never uploads half a file.
    with tempfile.NamedTemporaryFile(dir=output_dir, delete=False, suffix=".part") as part:
        part.write(data)
    os.chmod(part.name, 0o644)
    os.replace(part.name, path)
    return path


class HelperCall(StringCommand):
    """``python3 <helper> <command> '<JSON arguments>'``, keeping the helper's path for facts that
    must first check that it is installed."""

    def __init__(self, helper: str, command: str, arguments: dict) -> None:
        # ASCII JSON: the command line stays ASCII whatever the target's locale.
        text = json.dumps(arguments, sort_keys=True, ensure_ascii=True)
        super().__init__(TARGET_PYTHON, QuoteString(helper), command, QuoteString(text))
        self.helper = helper
        self.command = command
        self.arguments = arguments


# --- the app's secrets file ------------------------------------------------------------------------


def secrets_status(helper: str, path: str) -> HelperCall:
    """Query: digests of the values of the secrets file at ``path``, its owner, group and mode."""
    return HelperCall(helper, "secrets-status", {"path": path})


def secrets_merge(
    helper: str, path: str, group: str, generate: list[str], given_file: str | None
) -> HelperCall:
    """Write the secrets file: values of ``given_file`` (root-only, deleted once read) over the kept
    ones, ``generate`` keys generated when absent, mode 0640 root:``group``."""
    arguments = {"path": path, "group": group, "generate": list(generate), "given_file": given_file}
    return HelperCall(helper, "secrets-merge", arguments)


def site_secrets_copy(
    helper: str, source: str, path: str, group: str, keys: dict[str, str] | list[str]
) -> HelperCall:
    """Write a site's own secrets file: exactly ``keys`` (key in the file -> key in the store, or a list
    of keys named alike in both) of the deploy's store ``source``, 0640 root:``group`` (the site's)."""
    keys = dict(keys) if isinstance(keys, dict) else list(keys)
    arguments = {"path": path, "group": group, "generate": [], "source": source, "keys": keys}
    return HelperCall(helper, "secrets-merge", arguments)


# --- database accounts ----------------------------------------------------------------------------


def database_state(
    helper: str,
    secrets: str,
    database: str,
    user: str,
    dbms: list[str],
    venv: str,
    app: str,
    seeder_secrets: str,
) -> HelperCall:
    """Query: the accounts of each DBMS in ``dbms`` and the app's seed ``--check`` exit codes."""
    arguments = {"secrets": secrets, "database": database, "user": user, "dbms": list(dbms)}
    return HelperCall(
        helper, "db-state", {**arguments, "venv": venv, "app": app, "seeder_secrets": seeder_secrets}
    )


def mysql_ensure(helper: str, secrets: str, database: str, user: str, seeder_secrets: str) -> HelperCall:
    """Make the MariaDB/MySQL database, the app's read-only user (the secrets file's
    ``mysql_password``) and the seeding user (its password made once in ``seeder_secrets``)."""
    arguments = {"secrets": secrets, "database": database, "user": user, "seeder_secrets": seeder_secrets}
    return HelperCall(helper, "mysql-ensure", arguments)


def pg_ensure(helper: str, secrets: str, database: str, user: str, seeder_secrets: str) -> HelperCall:
    """Make the PostgreSQL read-only role (``pgres_password`` of the secrets file), the seeding role
    owning the database, and the app role's grants there."""
    arguments = {"secrets": secrets, "database": database, "user": user, "seeder_secrets": seeder_secrets}
    return HelperCall(helper, "pg-ensure", arguments)


def db_seed(
    helper: str, secrets: str, seeder_secrets: str, dbms: str, user: str, venv: str, app: str
) -> HelperCall:
    """Run the app's ``python -m impots.db.seed <dbms>`` from ``app`` as the seeding account."""
    arguments = {"secrets_path": secrets, "seeder_secrets": seeder_secrets, "dbms": dbms, "user": user}
    return HelperCall(helper, "db-seed", {**arguments, "venv": venv, "app": app})


# --- Apache configuration transaction ----------------------------------------------------------------


def apache_snapshot(helper: str, config_root: str, snapshot: str) -> HelperCall:
    """Keep ``config_root`` in ``snapshot`` unless a snapshot of this run already exists."""
    return HelperCall(helper, "apache-snapshot", {"config_root": config_root, "snapshot": snapshot})


def apache_restore(helper: str, config_root: str, snapshot: str) -> HelperCall:
    """Put the snapshot back in place of ``config_root`` (kept aside as ``apache-config-rejected``)."""
    return HelperCall(helper, "apache-restore", {"config_root": config_root, "snapshot": snapshot})


def apache_reload(
    helper: str,
    config_root: str,
    snapshot: str,
    command: list[str],
    start: list[str],
    status: list[str],
    error_log: str,
) -> HelperCall:
    """Run ``command`` (start or graceful reload) and wait for Apache to serve the new configuration;
    if it dies, restore the snapshot and ``start`` it again once ``status`` fails, then fail."""
    arguments = {"config_root": config_root, "snapshot": snapshot, "command": list(command)}
    arguments.update(start=list(start), status=list(status), error_log=error_log)
    return HelperCall(helper, "apache-reload", arguments)


def smoke_check(
    helper: str, name: str, url: str, address: str, expect: str, error_log: str, cacert: str | None = None
) -> HelperCall:
    """GET ``url`` over verified HTTPS with ``name`` resolved to ``address``; fail unless it answers
    200 with ``expect`` in the page (``cacert``: the trust anchor, ``None``: the system's)."""
    arguments = {"name": name, "url": url, "address": address, "expect": expect, "error_log": error_log}
    return HelperCall(helper, "smoke", {**arguments, "cacert": cacert})


# --- Redis: the app's password, loopback, a memory limit -------------------------------------------


def redis_status(
    helper: str,
    path: str,
    secrets: str,
    main_configs: list[str],
    port: int,
    maxmemory_mb: int,
    policy: str,
    users: list[dict] | None = None,
) -> HelperCall:
    """Query: booleans on our Redis file at ``path`` (current by digest, included last by the first of
    ``main_configs`` that exists), its access, and whether Redis on ``port`` takes the secrets' passwords
    (the default user's and each of ``users``: ``{"user", "secret", "key_prefix"}``, ``secret`` naming
    the store's key of its password)."""
    arguments = {"path": path, "secrets": secrets, "main_configs": list(main_configs), "port": port}
    arguments.update(maxmemory_mb=maxmemory_mb, policy=policy, users=list(users or []))
    return HelperCall(helper, "redis-status", arguments)


def redis_apply(
    helper: str,
    path: str,
    secrets: str,
    group: str,
    main_configs: list[str],
    port: int,
    maxmemory_mb: int,
    policy: str,
    restart: list[str],
    users: list[dict] | None = None,
) -> HelperCall:
    """Write our Redis file (0640 root:``group``: ``redis_password`` of the secrets file for the default
    user, one ACL user per entry of ``users``) and its include line where they differ; run ``restart``
    when either changed or Redis does not take the passwords."""
    arguments = {"path": path, "secrets": secrets, "group": group, "main_configs": list(main_configs)}
    arguments.update(port=port, maxmemory_mb=maxmemory_mb, policy=policy, restart=list(restart))
    arguments.update(users=list(users or []))
    return HelperCall(helper, "redis-apply", arguments)
