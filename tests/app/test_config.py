"""The instance configuration (Contract 1): defaults, merge order, paths, and errors naming file and key."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from impots.config import ConfigError, instance_path, load_config
from passlib.hash import pbkdf2_sha256


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty instance folder, selected through IMPOTS_INSTANCE_PATH."""
    monkeypatch.setenv("IMPOTS_INSTANCE_PATH", str(tmp_path))
    return tmp_path


def write_config(folder: Path, settings: Any) -> Path:
    path = folder / "impots.json"
    path.write_text(settings if isinstance(settings, str) else json.dumps(settings), encoding="utf-8")
    return path


def write_secrets(folder: Path, secrets: Any, mode: int = 0o640, name: str = "secrets.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(secrets), encoding="utf-8")
    os.chmod(path, mode)
    return path


def test_instance_path_from_environment_or_app_instance(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("IMPOTS_INSTANCE_PATH", str(tmp_path))
    assert instance_path() == str(tmp_path)
    monkeypatch.delenv("IMPOTS_INSTANCE_PATH")
    assert instance_path() == str(Path(__file__).resolve().parents[2] / "app" / "instance")


def test_defaults_without_any_file(folder: Path) -> None:
    config = load_config("pgres")
    assert config["prefix_url"] == "/do"
    assert config["with_csrftoken"] is False and config["with_redissession"] is True
    assert config["redis"] == {
        "host": "127.0.0.1",
        "port": 6379,
        "db": 0,
        "user": None,  # the default user: the course's behaviour
        "key_prefix": "impots:pgres:",
    }
    assert config["db"] == {
        "host": "127.0.0.1",
        "port": 5432,
        "database": "dbimpots-2019",
        "user": "admimpots",
        "password": None,
    }
    assert config["databases"]["mysql"]["port"] == 3306
    assert [user["login"] for user in config["users"]] == ["admin"]
    assert pbkdf2_sha256.verify("admin", config["users"][0]["password"])
    assert config["log_file"] == str(folder / "logs" / "impots.log")
    assert config["secrets_file"] == str(folder / "secrets.json")
    assert config["admin_mail"]["smtp_port"] == 25 and config["admin_mail"]["tls"] is False
    assert config["admin_mail"]["subject"] == "plantage du serveur de calcul d'impôts"
    assert config["sleep_time"] == 0
    assert config["max_request_bytes"] == 65536
    assert config["login_throttle"] == {
        "enabled": True,
        "max_failures_per_login": 5,
        "max_failures_per_address": 20,
        "window_seconds": 900,
        "first_delay_seconds": 1,
        "max_delay_seconds": 300,
    }
    assert config["secret_key"] is None and config["dbms"] == "pgres"
    assert config["instance_path"] == str(folder)


def test_files_and_overrides_merge_in_order(folder: Path) -> None:
    write_config(
        folder,
        {
            "prefix_url": "/impots/do",
            "databases": {"mysql": {"port": 3307}},
            "log_file": "logs/impots-{dbms}.log",
            "admin_mail": {"smtp_port": 2525, "tls": True, "user": "alerts"},
        },
    )
    write_secrets(folder, {"secret_key": "k" * 32, "mysql_password": "from-secrets", "smtp_password": "s"})
    config = load_config(
        "mysql", {"with_csrftoken": True, "databases": {"mysql": {"host": "db.lan"}}, "TESTING": True}
    )
    assert config["prefix_url"] == "/impots/do"
    assert config["with_csrftoken"] is True
    assert config["db"] == {
        "host": "db.lan",
        "port": 3307,
        "database": "dbimpots-2019",
        "user": "admimpots",
        "password": "from-secrets",
    }
    assert config["log_file"] == str(folder / "logs" / "impots-mysql.log")
    assert config["admin_mail"] == {
        "smtp_server": "localhost",
        "smtp_port": 2525,
        "from": "guest@localhost.com",
        "to": "guest@localhost.com",
        "subject": "plantage du serveur de calcul d'impôts",
        "tls": True,
        "user": "alerts",
    }
    assert config["secret_key"] == "k" * 32 and config["smtp_password"] == "s"
    assert config["TESTING"] is True
    # overrides win over secrets too
    assert load_config("mysql", {"mysql_password": "override"})["db"]["password"] == "override"


def test_paths_relative_to_instance_and_absolute(
    folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    secrets = write_secrets(elsewhere, {"pgres_password": "p"}, name="db-secrets.json")
    write_config(folder, {"log_file": str(elsewhere / "{dbms}.log"), "secrets_file": str(secrets)})
    config = load_config("pgres")
    assert config["log_file"] == str(elsewhere / "pgres.log")
    assert config["db"]["password"] == "p"
    write_config(folder, {"secrets_file": "sub/../other.json"})
    write_secrets(folder, {"pgres_password": "q"}, name="other.json")
    assert load_config("pgres")["db"]["password"] == "q"


def test_the_instance_dir_fixture_points_at_the_test_databases(
    instance_dir: Path, mysql_db: dict[str, Any], pgres_db: dict[str, Any]
) -> None:
    assert load_config("mysql")["db"] == mysql_db
    assert load_config("pgres")["db"] == pgres_db
    assert load_config("pgres")["secret_key"]


@pytest.mark.parametrize("dbms", ["oracle", "MYSQL", ""])
def test_unknown_dbms(folder: Path, dbms: str) -> None:
    with pytest.raises(ValueError, match="unknown dbms") as raised:
        load_config(dbms)
    assert isinstance(raised.value, ConfigError)


@pytest.mark.parametrize("prefix", ["", "/do", "/impots/do", "/a-b_c.d"])
def test_valid_prefix_url(folder: Path, prefix: str) -> None:
    write_config(folder, {"prefix_url": prefix})
    assert load_config("mysql")["prefix_url"] == prefix


@pytest.mark.parametrize(
    "prefix", ["do", "/", "/do/", "/a/b/c", "//do", "/d o", 5, None, "/.", "/..", "/do/..", "/./do"]
)
def test_invalid_prefix_url(folder: Path, prefix: Any) -> None:
    path = write_config(folder, {"prefix_url": prefix})
    with pytest.raises(ConfigError, match=rf"^{path}: prefix_url: expected"):
        load_config("mysql")


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"with_csrftoken": "yes"}, "with_csrftoken"),
        ({"with_redissession": 1}, "with_redissession"),
        ({"redis": {"port": "6379"}}, "redis.port"),
        ({"redis": {"db": -1}}, "redis.db"),
        ({"redis": {"password": "x"}}, "redis.password"),
        ({"redis": []}, "redis"),
        ({"databases": {"oracle": {}}}, "databases.oracle"),
        ({"databases": {"mysql": {"port": 70000}}}, "databases.mysql.port"),
        ({"databases": {"mysql": {"password": "x"}}}, "databases.mysql.password"),
        ({"databases": ["mysql"]}, "databases"),
        ({"users": []}, "users"),
        ({"users": [{"login": "admin", "password": "admin"}]}, "users[0].password"),
        ({"users": [{"login": "admin"}]}, "users[0]"),
        ({"log_file": ""}, "log_file"),
        ({"admin_mail": {"smtp_port": "25"}}, "admin_mail.smtp_port"),
        ({"admin_mail": {"tls": "false"}}, "admin_mail.tls"),
        ({"admin_mail": {"smtp-server": "x"}}, "admin_mail.smtp-server"),
        ({"sleep_time": -1}, "sleep_time"),
        ({"sleep_time": True}, "sleep_time"),
        ({"mysql_password": "secret"}, "mysql_password"),
        ({"prefixurl": "/do"}, "prefixurl"),
        ({"max_request_bytes": "64k"}, "max_request_bytes"),
        ({"max_request_bytes": 1023}, "max_request_bytes"),
        ({"max_request_bytes": 65536.0}, "max_request_bytes"),
        ({"max_request_bytes": True}, "max_request_bytes"),
        ({"login_throttle": {"enabled": "yes"}}, "login_throttle.enabled"),
        ({"login_throttle": {"max_failures_per_login": 0}}, "login_throttle.max_failures_per_login"),
        ({"login_throttle": {"max_failures_per_address": 2.5}}, "login_throttle.max_failures_per_address"),
        ({"login_throttle": {"window_seconds": 0}}, "login_throttle.window_seconds"),
        ({"login_throttle": {"first_delay_seconds": -1}}, "login_throttle.first_delay_seconds"),
        ({"login_throttle": {"max_delay_seconds": "300"}}, "login_throttle.max_delay_seconds"),
        ({"login_throttle": {"max_failures": 5}}, "login_throttle.max_failures"),
        ({"login_throttle": 5}, "login_throttle"),
    ],
)
def test_bad_setting_names_file_and_key(folder: Path, settings: dict[str, Any], key: str) -> None:
    path = write_config(folder, settings)
    with pytest.raises(ConfigError) as raised:
        load_config("mysql")
    assert str(raised.value).startswith(f"{path}: {key}: "), str(raised.value)


def test_bad_override_names_overrides(folder: Path) -> None:
    with pytest.raises(ConfigError, match=r"^overrides: with_csrftoken: expected true or false"):
        load_config("mysql", {"with_csrftoken": "no"})
    with pytest.raises(ConfigError, match=r"^overrides: colour: unknown key"):
        load_config("mysql", {"colour": "blue"})


@pytest.mark.parametrize("content", ['{"prefix_url": "/do",}', "[1, 2]", ""])
def test_bad_json(folder: Path, content: str) -> None:
    path = write_config(folder, content)
    with pytest.raises(ConfigError, match=rf"^{path}: (invalid JSON|expected a JSON object)"):
        load_config("pgres")


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o400, 0o440])
def test_secrets_file_private_enough(folder: Path, mode: int) -> None:
    write_secrets(folder, {"pgres_password": "p"}, mode=mode)
    assert load_config("pgres")["db"]["password"] == "p"


@pytest.mark.parametrize("mode", [0o644, 0o660, 0o604, 0o641, 0o700, 0o777])
def test_secrets_file_too_open(folder: Path, mode: int) -> None:
    path = write_secrets(folder, {"pgres_password": "p"}, mode=mode)
    with pytest.raises(ConfigError, match=rf"^{path}: permissions {mode:04o} are too open"):
        load_config("pgres")


def test_secrets_file_errors(folder: Path) -> None:
    path = write_secrets(folder, {"pgres_pasword": "p"})
    with pytest.raises(ConfigError, match=rf"^{path}: pgres_pasword: unknown key"):
        load_config("pgres")
    write_secrets(folder, {"secret_key": 42})
    with pytest.raises(ConfigError, match=rf"^{path}: secret_key: expected a string"):
        load_config("pgres")
    write_config(folder, {"secrets_file": "missing.json"})
    with pytest.raises(ConfigError, match="missing.json: secrets file not found"):
        load_config("pgres")


def test_secret_never_in_the_error_message(folder: Path) -> None:
    write_secrets(folder, {"pgres_password": "hunter2-very-secret"}, mode=0o644)
    with pytest.raises(ConfigError) as raised:
        load_config("pgres")
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("user", "key", "expected"),
    [
        ({"login": "admin", "password": "hunter2-in-clear"}, "users[0].password", "a pbkdf2-sha256 hash"),
        ({"login": "admin", "pass": "hunter2-in-clear"}, "users[0]", "{login, password}"),
        ({"login": "admin", "password": "hunter2-in-clear", "role": "x"}, "users[0]", "{login, password}"),
    ],
)
def test_a_clear_password_in_users_is_not_echoed(
    folder: Path, user: dict[str, str], key: str, expected: str
) -> None:
    """A clear-text password put by mistake in ``users`` must not reach the error log."""
    path = write_config(folder, {"users": [user]})
    with pytest.raises(ConfigError) as raised:
        load_config("mysql")
    assert str(raised.value).startswith(f"{path}: {key}: expected {expected}"), str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_users_as_an_object_is_not_echoed(folder: Path) -> None:
    path = write_config(folder, {"users": {"login": "admin", "password": "hunter2-in-clear"}})
    with pytest.raises(ConfigError) as raised:
        load_config("mysql")
    assert str(raised.value) == f"{path}: users: expected a non-empty list of {{login, password}}, got a dict"


def test_hardening_keys_from_the_file(folder: Path) -> None:
    write_config(
        folder,
        {
            "max_request_bytes": 1024,
            "login_throttle": {"max_failures_per_login": 3, "first_delay_seconds": 0.5},
        },
    )
    config = load_config("mysql")
    assert config["max_request_bytes"] == 1024
    throttle = config["login_throttle"]
    assert throttle["max_failures_per_login"] == 3 and throttle["first_delay_seconds"] == 0.5
    assert throttle["max_failures_per_address"] == 20 and throttle["enabled"] is True  # defaults kept
