"""The application's instance configuration (architecture Contract 1).

``load_config(dbms)`` merges, in this order: the defaults below ← ``impots.json`` ← ``secrets.json`` ←
``overrides``, validates everything, and returns a plain dict with these keys:

- ``dbms``: ``"mysql"`` or ``"pgres"`` (the argument);
- ``instance_path``: the absolute instance folder (see :func:`instance_path`);
- ``prefix_url`` (str, ``""`` or ``/x[/y]``), ``with_csrftoken`` (bool), ``with_redissession`` (bool);
- ``redis``: ``{"host", "port", "db", "user", "key_prefix"}``: ``user`` the Redis ACL user to log in as
  (None: the default user, the course's behaviour), ``key_prefix`` the start of every key the app
  writes (``{dbms}`` replaced; default ``impots:{dbms}:``, sessions under ``<prefix>session:``, login
  counters under ``<prefix>throttle:``);
- ``databases``: ``{"mysql": {...}, "pgres": {...}}`` each ``{"host", "port", "database", "user"}``;
- ``db``: the chosen DBMS's entry plus ``"password"`` (from secrets; may be None): the mapping that
  ``impots.db.dao.load_admin_data`` and ``impots.db.seed.ensure_schema`` take;
- ``users``: list of ``{"login", "password"}`` (passlib pbkdf2-sha256 hashes);
- ``log_file``: absolute path, ``{dbms}`` replaced;
- ``admin_mail``: ``{"smtp_server", "smtp_port", "from", "to", "subject", "tls", "user"}``
  (the argument of ``impots.mail.send_admin_mail``);
- ``sleep_time`` (number >= 0);
- ``max_request_bytes`` (int >= 1024): the largest request body accepted; a bigger one gets HTTP 413;
- ``login_throttle``: ``{"enabled", "max_failures_per_login", "max_failures_per_address", "window_seconds",
  "first_delay_seconds", "max_delay_seconds"}`` (see ``impots.web.throttle``);
- ``secrets_file``: absolute path;
- the secrets: ``secret_key``, ``mysql_password``, ``pgres_password``, ``smtp_password``,
  ``redis_password`` (each None when absent; the web layer decides whether a missing ``secret_key``
  is acceptable).

Overrides may also carry upper-case keys (Flask settings such as ``TESTING``): they are passed through
unchecked. Any other unknown key, a value of the wrong type, bad JSON or a secrets file readable beyond
0640 raises :class:`ConfigError` ``"<file>: <key>: <what is wrong>"`` (a ``ValueError``).
"""

from __future__ import annotations

import copy
import json
import os
import re
import stat
from collections.abc import Callable, Mapping
from typing import Any

from impots.db.dao import DBMS_NAMES

INSTANCE_PATH_VARIABLE = "IMPOTS_INSTANCE_PATH"
CONFIG_FILE_NAME = "impots.json"
SECRET_KEYS = ("secret_key", "mysql_password", "pgres_password", "smtp_password", "redis_password")

# passlib pbkdf2_sha256 hash of "admin", as given by the course (spec §5.2).
ADMIN_PASSWORD_HASH = (
    "$pbkdf2-sha256$29000$fU9pTendO6c0ZoyR8r5Xqg$5ZXywIUnbMfN2hPnBaefiuqWjEbmAY.Lu06i4dwcnek"
)

DEFAULTS: dict[str, Any] = {
    "prefix_url": "/do",
    "with_csrftoken": False,
    "with_redissession": True,
    "redis": {"host": "127.0.0.1", "port": 6379, "db": 0, "user": None, "key_prefix": "impots:{dbms}:"},
    "databases": {
        "mysql": {"host": "127.0.0.1", "port": 3306, "database": "dbimpots-2019", "user": "admimpots"},
        "pgres": {"host": "127.0.0.1", "port": 5432, "database": "dbimpots-2019", "user": "admimpots"},
    },
    "users": [{"login": "admin", "password": ADMIN_PASSWORD_HASH}],
    "log_file": "logs/impots.log",
    "admin_mail": {
        "smtp_server": "localhost",
        "smtp_port": 25,
        "from": "guest@localhost.com",
        "to": "guest@localhost.com",
        "subject": "plantage du serveur de calcul d'impôts",
        "tls": False,
        "user": None,
    },
    "sleep_time": 0,
    "max_request_bytes": 65536,
    # Failed logins kept in Redis: after N failures (per login, or per client address) each new attempt
    # waits first_delay_seconds, doubling per further failure up to max_delay_seconds; counters are
    # forgotten window_seconds after the last failure, and a success clears the login's counter.
    "login_throttle": {
        "enabled": True,
        "max_failures_per_login": 5,
        "max_failures_per_address": 20,
        "window_seconds": 900,
        "first_delay_seconds": 1,
        "max_delay_seconds": 300,
    },
    "secrets_file": "secrets.json",
}

# One or two path segments; "." and ".." are refused: browsers and proxies resolve them away.
_PREFIX_URL = re.compile(r"(/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+){1,2}")
# Redis ACL user names as the provisioning makes them (a site's system user); no space, no control.
_REDIS_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Words separated by ":", ending in ":": a literal prefix (no glob character) that an ACL key pattern
# "<prefix>*" can allow; "{dbms}" stands for the site's DBMS.
_REDIS_KEY_PREFIX = re.compile(r"([A-Za-z0-9_.-]|\{dbms\})+(:([A-Za-z0-9_.-]|\{dbms\})+)*:")
# Permission bits a secrets file may have: owner read/write, group read (0640).
_SECRETS_ALLOWED_MODE = 0o640
# Below this, an ordinary login or tax form would be refused.
MIN_REQUEST_BYTES = 1024


class ConfigError(ValueError):
    """Bad instance configuration; the message names the file (or ``overrides``) and the key."""


def instance_path() -> str:
    """The instance folder: ``$IMPOTS_INSTANCE_PATH`` if set, else ``app/instance/<daemon process
    group>`` when that folder exists (Linux: each site's mod_wsgi daemons, named after the site, run as
    the site's own user and read only the site's own folder), else ``app/instance`` (Flask's default)."""
    configured = os.environ.get(INSTANCE_PATH_VARIABLE)
    if configured:
        return os.path.abspath(configured)
    app_folder = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shared = os.path.join(app_folder, "instance")
    group = _daemon_process_group()
    if group and os.path.isdir(os.path.join(shared, group)):
        return os.path.join(shared, group)
    return shared


def _daemon_process_group() -> str:
    """The mod_wsgi daemon process group this process serves; "" outside mod_wsgi or when embedded."""
    try:
        import mod_wsgi  # only importable inside Apache's mod_wsgi
    except ImportError:
        return ""
    group = getattr(mod_wsgi, "process_group", "")
    # A group name with a path separator is never a site's folder.
    return group if isinstance(group, str) and "/" not in group and group not in ("", ".", "..") else ""


def load_config(dbms: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read and validate the instance configuration for ``dbms`` (see the module docstring for the keys)."""
    if dbms not in DBMS_NAMES:
        raise ConfigError(f"unknown dbms {dbms!r}: expected one of {', '.join(DBMS_NAMES)}")
    folder = instance_path()
    config_file = os.path.join(folder, CONFIG_FILE_NAME)
    overrides = dict(overrides or {})
    passthrough = {
        key: overrides.pop(key) for key in list(overrides) if isinstance(key, str) and key.isupper()
    }

    config = copy.deepcopy(DEFAULTS)
    from_file = _read_json(config_file) if os.path.exists(config_file) else {}
    _check_settings(from_file, config_file)
    _deep_merge(config, from_file)
    _check_settings(overrides, "overrides")

    # The secrets file's location may itself come from the overrides.
    secrets_file = _resolve(folder, overrides.get("secrets_file", config["secrets_file"]))
    secrets_explicit = "secrets_file" in from_file or "secrets_file" in overrides
    secrets = _read_secrets(secrets_file, required=secrets_explicit)

    for key in SECRET_KEYS:
        config[key] = secrets.get(key)
    _deep_merge(config, overrides)
    config.update(passthrough)

    config["dbms"] = dbms
    config["instance_path"] = folder
    config["secrets_file"] = secrets_file
    config["log_file"] = _resolve(folder, config["log_file"].replace("{dbms}", dbms))
    config["redis"]["key_prefix"] = config["redis"]["key_prefix"].replace("{dbms}", dbms)
    config["db"] = {**config["databases"][dbms], "password": config[f"{dbms}_password"]}
    return config


def _resolve(folder: str, path: str) -> str:
    return os.path.normpath(os.path.join(folder, path))


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: invalid JSON: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_secrets(path: str, required: bool) -> dict[str, Any]:
    if not os.path.exists(path):
        if required:
            raise ConfigError(f"{path}: secrets file not found")
        return {}
    if os.name == "posix":
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & ~_SECRETS_ALLOWED_MODE:
            raise ConfigError(
                f"{path}: permissions {mode:04o} are too open (at most 0640: the file holds secrets)"
            )
    secrets = _read_json(path)
    for key, value in secrets.items():
        if key not in SECRET_KEYS:
            raise ConfigError(f"{path}: {key}: unknown key (expected one of {', '.join(SECRET_KEYS)})")
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{path}: {key}: expected a string, got {type(value).__name__}")
    return secrets


def _deep_merge(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    """Merge ``source`` into ``target``: nested mappings merge key by key, anything else replaces."""
    for key, value in source.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


# ---- validation ------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_port(value: Any) -> bool:
    return _is_int(value) and 0 < value < 65536


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_optional_text(value: Any) -> bool:
    return value is None or _is_text(value)


def _is_prefix_url(value: Any) -> bool:
    return isinstance(value, str) and (value == "" or _PREFIX_URL.fullmatch(value) is not None)


def _is_sleep_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _is_request_limit(value: Any) -> bool:
    return _is_int(value) and value >= MIN_REQUEST_BYTES


def _is_positive_int(value: Any) -> bool:
    return _is_int(value) and value >= 1


def _is_positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _is_password_hash(value: Any) -> bool:
    from passlib.hash import pbkdf2_sha256

    return isinstance(value, str) and pbkdf2_sha256.identify(value)


Check = Callable[[Any], bool]

_DATABASE_FIELDS: dict[str, tuple[Check, str]] = {
    "host": (_is_text, "a host name"),
    "port": (_is_port, "a port number (1-65535)"),
    "database": (_is_text, "a database name"),
    "user": (_is_text, "a user name"),
}
_NESTED_FIELDS: dict[str, dict[str, tuple[Check, str]]] = {
    "redis": {
        "host": (_is_text, "a host name"),
        "port": (_is_port, "a port number (1-65535)"),
        "db": (lambda value: _is_int(value) and value >= 0, "a database number >= 0"),
        "user": (
            lambda value: (
                value is None or (isinstance(value, str) and _REDIS_USER.fullmatch(value) is not None)
            ),
            "a Redis user name (letters, digits, '_', '.', '-') or null",
        ),
        "key_prefix": (
            lambda value: isinstance(value, str) and _REDIS_KEY_PREFIX.fullmatch(value) is not None,
            'words separated by ":" and ending in ":" (e.g. "impots:{dbms}:")',
        ),
    },
    "admin_mail": {
        "smtp_server": (_is_text, "a host name"),
        "smtp_port": (_is_port, "a port number (1-65535)"),
        "from": (_is_text, "an e-mail address"),
        "to": (_is_text, "an e-mail address"),
        "subject": (lambda value: isinstance(value, str), "a string"),
        "tls": (_is_bool, "true or false"),
        "user": (_is_optional_text, "a user name or null"),
    },
    "login_throttle": {
        "enabled": (_is_bool, "true or false"),
        "max_failures_per_login": (_is_positive_int, "a whole number >= 1"),
        "max_failures_per_address": (_is_positive_int, "a whole number >= 1"),
        "window_seconds": (_is_positive_number, "a number of seconds > 0"),
        "first_delay_seconds": (_is_positive_number, "a number of seconds > 0"),
        "max_delay_seconds": (_is_positive_number, "a number of seconds > 0"),
    },
}
_SCALAR_FIELDS: dict[str, tuple[Check, str]] = {
    "prefix_url": (_is_prefix_url, '"" or "/segment[/segment]"'),
    "with_csrftoken": (_is_bool, "true or false"),
    "with_redissession": (_is_bool, "true or false"),
    "log_file": (_is_text, "a file path"),
    "sleep_time": (_is_sleep_time, "a number of seconds >= 0"),
    "max_request_bytes": (_is_request_limit, f"a whole number of bytes >= {MIN_REQUEST_BYTES}"),
    "secrets_file": (_is_text, "a file path"),
}
_OVERRIDABLE_SECRETS = {key: (_is_optional_text, "a string or null") for key in SECRET_KEYS}


def _check_settings(settings: Mapping[str, Any], source: str) -> None:
    """Raise ConfigError naming ``source`` and the key for the first invalid setting."""
    for key, value in settings.items():
        if key in _SCALAR_FIELDS:
            _check_value(source, key, value, *_SCALAR_FIELDS[key])
        elif key in _NESTED_FIELDS:
            _check_mapping(source, key, value, _NESTED_FIELDS[key])
        elif key == "databases":
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: databases: expected an object keyed by dbms, got {value!r}")
            for dbms, database in value.items():
                if dbms not in DBMS_NAMES:
                    raise ConfigError(
                        f"{source}: databases.{dbms}: unknown dbms (expected one of {', '.join(DBMS_NAMES)})"
                    )
                _check_mapping(source, f"databases.{dbms}", database, _DATABASE_FIELDS)
        elif key == "users":
            _check_users(source, value)
        elif source == "overrides" and key in _OVERRIDABLE_SECRETS:
            _check_value(source, key, value, *_OVERRIDABLE_SECRETS[key])
        elif key in SECRET_KEYS:
            raise ConfigError(f"{source}: {key}: secrets belong in the secrets file, not here")
        else:
            raise ConfigError(f"{source}: {key}: unknown key")


def _check_value(source: str, key: str, value: Any, check: Check, expected: str, echo: bool = True) -> None:
    """``echo=False`` for values that may be secrets: the message then gives the type, not the value."""
    if not check(value):
        got = repr(value) if echo else f"a {type(value).__name__}"
        raise ConfigError(f"{source}: {key}: expected {expected}, got {got}")


def _check_mapping(source: str, key: str, value: Any, fields: Mapping[str, tuple[Check, str]]) -> None:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: {key}: expected an object, got {value!r}")
    for name, item in value.items():
        if name not in fields:
            raise ConfigError(f"{source}: {key}.{name}: unknown key (expected {', '.join(fields)})")
        _check_value(source, f"{key}.{name}", item, *fields[name])


def _check_users(source: str, users: Any) -> None:
    if not isinstance(users, list) or not users:
        got = "[]" if users == [] else f"a {type(users).__name__}"  # not the value: it may hold a password
        raise ConfigError(f"{source}: users: expected a non-empty list of {{login, password}}, got {got}")
    for index, user in enumerate(users):
        if not isinstance(user, Mapping) or set(user) != {"login", "password"}:
            # The keys only: the values may hold a clear-text password.
            got = f"a {type(user).__name__}"
            if isinstance(user, Mapping):
                got = f"the keys {sorted(map(str, user))}"
            raise ConfigError(f"{source}: users[{index}]: expected {{login, password}}, got {got}")
        _check_value(source, f"users[{index}].login", user["login"], _is_text, "a login")
        # Not echoed: a clear-text password put here by mistake must not reach the error log.
        _check_value(
            source,
            f"users[{index}].password",
            user["password"],
            _is_password_hash,
            "a pbkdf2-sha256 hash",
            echo=False,
        )
