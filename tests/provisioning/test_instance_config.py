"""The deploy writes the app's impots.json from the validated settings (``instance_config_json``); the
app reads it with its own loader (``app/impots/config.py`` ``load_config``). These tests run that loader
on what the deploy writes, instead of keeping copies of the app's defaults equal."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from passlib.hash import pbkdf2_sha256

from provisioning.settings import (
    AppPaths,
    Settings,
    app_paths,
    instance_config,
    instance_config_json,
    parse_settings,
)

APP_DIR = Path(__file__).resolve().parents[2] / "app"
SECRETS = {
    "secret_key": "flask-secret-key-1",
    "mysql_password": "mysql-pass-1",
    "pgres_password": "pgres-pass-1",
}
CUSTOM = {
    "impots_prefix_url": "/calcul/impots",
    "impots_with_csrftoken": True,
    "impots_with_redissession": False,
    "impots_max_request_bytes": 1048576,
    "impots_database": {"name": "impots-lab", "user": "labuser"},
    "impots_users": [
        {"login": "admin", "password_hash": pbkdf2_sha256.hash("admin")},
        {"login": "élève", "password_hash": pbkdf2_sha256.hash("secret")},
    ],
    "impots_admin_mail": {"smtp_server": "smtp.lab.example", "smtp_port": 587, "tls": True, "user": "mailer"},
    "impots_smtp_password": "smtp-pass-1",
}


@pytest.fixture(scope="module")
def app_config() -> ModuleType:
    """The app's own ``impots.config``, imported as the WSGI files do (``app/`` first on ``sys.path``)."""
    added = str(APP_DIR) not in sys.path
    if added:
        sys.path.insert(0, str(APP_DIR))
    try:
        return importlib.import_module("impots.config")
    finally:
        if added:
            sys.path.remove(str(APP_DIR))


def deploy_instance(root: Path, monkeypatch: pytest.MonkeyPatch, data: dict) -> tuple[Settings, AppPaths]:
    """Write impots.json as the deploy does, and a secrets.json, into the instance folder under ``root``."""
    settings = parse_settings("h", {"impots_install_root": str(root), **data}, {})
    paths = app_paths(settings)
    Path(paths.instance).mkdir(parents=True)
    Path(paths.config_file).write_text(instance_config_json(settings, paths), encoding="utf-8")
    secrets_file = Path(paths.secrets_file)
    secrets_file.write_text(json.dumps(SECRETS))
    secrets_file.chmod(0o600)
    monkeypatch.setenv("IMPOTS_INSTANCE_PATH", paths.instance)
    return settings, paths


def load_in_app(app_config: ModuleType, dbms: str) -> dict:
    return app_config.load_config(dbms)


def test_json_text_is_stable_utf8_with_a_final_newline() -> None:
    settings = parse_settings("h", {}, {})
    paths = app_paths(settings)
    text = instance_config_json(settings, paths)
    assert text == instance_config_json(parse_settings("h", {}, {}), paths)
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert "plantage du serveur de calcul d'impôts" in text
    assert json.loads(text) == instance_config(settings, paths)
    assert list(json.loads(text)) == [
        "prefix_url", "with_csrftoken", "with_redissession", "max_request_bytes", "redis", "databases",
        "users", "log_file", "admin_mail", "sleep_time", "secrets_file",
    ]  # fmt: skip


def test_no_secret_reaches_impots_json() -> None:
    secrets = {
        "impots_mysql_password": "mysql-secret-1",
        "impots_pgres_password": "pgres-secret-1",
        "impots_secret_key": "flask-secret-1",
        "impots_smtp_password": "smtp-secret-1",
        "impots_mysql_admin_password": "admin-secret-1",
    }
    settings = parse_settings("h", {**secrets, "impots_admin_mail": {"user": "mailer"}}, {})
    text = instance_config_json(settings, app_paths(settings))
    assert not [value for value in secrets.values() if value in text]


@pytest.mark.parametrize("dbms", ["mysql", "pgres"])
def test_the_app_loads_what_the_deploy_writes(
    dbms: str, app_config: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, paths = deploy_instance(tmp_path / "impots", monkeypatch, CUSTOM)
    config = load_in_app(app_config, dbms)
    assert (config["prefix_url"], config["with_csrftoken"], config["with_redissession"]) == (
        "/calcul/impots", True, False,
    )  # fmt: skip
    assert config["max_request_bytes"] == 1048576
    port = {"mysql": 3306, "pgres": 5432}[dbms]
    assert config["db"] == {
        "host": "127.0.0.1", "port": port, "database": "impots-lab", "user": "labuser",
        "password": SECRETS[f"{dbms}_password"],
    }  # fmt: skip
    assert config["users"] == [{"login": u["login"], "password": u["password_hash"]} for u in settings.users]
    assert config["admin_mail"] == settings.admin_mail
    assert config["admin_mail"]["user"] == "mailer" and config["smtp_password"] is None
    assert config["log_file"] == f"{paths.logs}/impots-{dbms}.log"
    assert (config["secrets_file"], config["secret_key"]) == (paths.secrets_file, "flask-secret-key-1")


def test_default_host_data_gives_the_apps_own_defaults(
    app_config: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no impots_* key the app behaves as with no impots.json at all (the logs and secrets aside)."""
    monkeypatch.setenv("IMPOTS_INSTANCE_PATH", str(tmp_path / "empty"))
    apps_own = app_config.load_config("mysql")
    deploy_instance(tmp_path / "impots", monkeypatch, {})
    deployed = load_in_app(app_config, "mysql")
    for key in ("users", "log_file", "secrets_file", "instance_path", "db", *app_config.SECRET_KEYS):
        apps_own.pop(key), deployed.pop(key)
    assert deployed == apps_own
    # The two default admin hashes differ (salts) but both are "admin".
    [deployed_admin] = parse_settings("h", {}, {}).users
    assert pbkdf2_sha256.verify("admin", deployed_admin["password_hash"])
    assert pbkdf2_sha256.verify("admin", app_config.ADMIN_PASSWORD_HASH)
