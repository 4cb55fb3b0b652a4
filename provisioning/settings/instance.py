"""What every platform shares: the app's paths and its ``impots.json`` (Contract 1), from ``Settings``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from provisioning.settings.model import DBMS_NAMES, SERVICES, Settings


@dataclass(frozen=True)
class AppPaths:
    """Where the app, its venv and its instance folder live on a target (forward slashes everywhere)."""

    install_root: str
    app: str  # the current release of app/ (Contract 2 entry points live here)
    instance: str  # the app's instance folder as the app sees it: <app>/instance (Contract 1)
    config_file: str
    secrets_file: str
    logs: str
    log_file: str  # with Contract 1's {dbms} placeholder: one log per site
    venv: str
    releases: str  # unpacked artifacts, one folder per sha256
    document_root: str  # an empty folder: nothing is ever served as a file


def app_paths(settings: Settings) -> AppPaths:
    """Paths shared by every platform, derived from ``settings.install_root``."""
    root = settings.install_root.replace("\\", "/").rstrip("/")
    app = f"{root}/app"
    instance = f"{app}/instance"
    logs = f"{instance}/logs"
    return AppPaths(
        install_root=root,
        app=app,
        instance=instance,
        config_file=f"{instance}/impots.json",
        secrets_file=f"{instance}/secrets.json",
        logs=logs,
        log_file=f"{logs}/impots-{{dbms}}.log",
        venv=f"{root}/venv",
        releases=f"{root}/releases",
        document_root=f"{root}/www",
    )


def instance_config(settings: Settings, paths: AppPaths) -> dict[str, Any]:
    """The app's ``impots.json`` (Contract 1). No secret ever goes here: they live in ``secrets.json``,
    so ``pyinfra --diff`` of this file is safe to show. One file serves every site: the ``{dbms}``
    placeholder of ``log_file`` gives each site its own log."""
    account = {"database": settings.database.name, "user": settings.database.user}
    redis_host, redis_port = SERVICES["redis"]
    return {
        "prefix_url": settings.prefix_url,
        "with_csrftoken": settings.with_csrftoken,
        "with_redissession": settings.with_redissession,
        "max_request_bytes": settings.max_request_bytes,
        "redis": {"host": redis_host, "port": redis_port, "db": 0},
        "databases": {
            dbms: {"host": SERVICES[dbms][0], "port": SERVICES[dbms][1], **account} for dbms in DBMS_NAMES
        },
        "users": [{"login": user["login"], "password": user["password_hash"]} for user in settings.users],
        "log_file": paths.log_file,
        "admin_mail": dict(settings.admin_mail),
        "sleep_time": 0,
        "secrets_file": paths.secrets_file,
    }


def instance_config_json(settings: Settings, paths: AppPaths) -> str:
    """``instance_config`` as the file's text: stable key order, UTF-8 as is, a final newline."""
    return json.dumps(instance_config(settings, paths), indent=2, ensure_ascii=False) + "\n"
