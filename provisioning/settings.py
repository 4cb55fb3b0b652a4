"""Host data validation (Contract 3 of docs/architecture.md).

``load_settings(host)`` turns a host's ``impots_*`` data into a frozen ``Settings`` before any
operation is planned. Every bad value raises ``SettingsError("<host>: <key>: <what is wrong>")``,
so a typo in ``group_data/`` stops the run with the target untouched.

Shapes handed to the deploys and to ``templates/common/impots.json.j2``:

- ``settings.sites``: tuple of ``Site(name, kind, dbms, alias)``; ``dbms`` is ``None`` for date-time sites.
- ``settings.tls``: ``TlsSettings(source, cert, key, ca)``; paths are absolute controller paths.
- ``settings.database``: ``DatabaseSettings(name, user)``.
- ``settings.admin_mail``: a dict with Contract 1's keys (``smtp_server``, ``smtp_port``, ``from``, ``to``,
  ``subject``, ``tls``, ``user``); ``settings.users``: tuple of ``{"login", "password_hash"}`` dicts.
- secrets (``mysql_password``, ``pgres_password``, ``secret_key``, ``smtp_password``): a string, or ``None``
  meaning "generate once on the target and keep it".

``app_paths(settings)`` gives the folders and files every platform shares (``paths`` in the templates).
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_ADMIN_HASH = "$pbkdf2-sha256$29000$QsiZkzKmNEYoxXjP2fsfww$lS2z/2xVSsbZqkfUmZkyhmz7lSeyxN6dfoR616/NDvk"

DEFAULT_SITES = (
    {"name": "flask-impots-withmysql", "kind": "impots", "dbms": "mysql", "alias": "/impots"},
    {"name": "flask-impots-withpgres", "kind": "impots", "dbms": "pgres", "alias": "/impots"},
    {"name": "date-time-server", "kind": "date-time", "alias": "/"},
)

DEFAULT_ADMIN_MAIL = {
    "smtp_server": "localhost",
    "smtp_port": 25,
    "from": "guest@localhost.com",
    "to": "guest@localhost.com",
    "subject": "plantage du serveur de calcul d'impôts",
    "tls": False,
    "user": None,
}

# data key -> environment variable read when the data key is absent or None.
SECRET_ENVIRONMENT = {
    "impots_mysql_password": "IMPOTS_MYSQL_PASSWORD",
    "impots_pgres_password": "IMPOTS_PGRES_PASSWORD",
    "impots_secret_key": "IMPOTS_SECRET_KEY",
    "impots_smtp_password": "IMPOTS_SMTP_PASSWORD",
}

KNOWN_KEYS = frozenset(
    {
        "impots_os",
        "impots_sites",
        "impots_prefix_url",
        "impots_with_csrftoken",
        "impots_with_redissession",
        "impots_daemon_processes",
        "impots_daemon_threads",
        "impots_tls",
        "impots_database",
        "impots_admin_mail",
        "impots_users",
        "impots_install_root",
        "impots_windows_layout",
        "impots_laragon_root",
        "impots_apache_root",
        "impots_windows_python",
        "impots_listen_address",
        "impots_hosts_address",
        "impots_vhost_extra",
        # Windows only, validated by provisioning/windows/databases.py (database administrator accounts).
        "impots_mysql_admin_user",
        "impots_mysql_admin_password",
        "impots_pgres_admin_user",
        "impots_pgres_admin_password",
        *SECRET_ENVIRONMENT,
    }
)

SITE_KINDS = ("impots", "date-time")
DBMS_NAMES = ("mysql", "pgres")
WINDOWS_LAYOUTS = ("laragon", "apache-lounge")

_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# "." and ".." segments are refused: browsers and proxies resolve them away before Apache sees them.
_URL_SEGMENT = r"/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+"
_ALIAS = re.compile(rf"^(/|({_URL_SEGMENT})+)$")
# The app accepts "" or one or two segments (app/impots/config.py):
# refuse here what it would refuse at start-up.
_PREFIX_URL = re.compile(rf"^({_URL_SEGMENT}){{0,2}}$")
# Database and user names end up quoted inside SQL: keep them to characters that need no escaping.
_DB_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$")
_DB_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
# Install roots appear in shell commands and Apache directives: no spaces or shell metacharacters.
_LINUX_PATH = re.compile(r"^(/[A-Za-z0-9._-]+)+$")
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:([/\\][A-Za-z0-9._ ()-]+)*[/\\]?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_MIN_PASSWORD_LENGTH = 8


class SettingsError(ValueError):
    """Bad host data: the message is ``<host>: <key>: <what is wrong>``."""


@dataclass(frozen=True)
class Site:
    name: str
    kind: str  # "impots" or "date-time"
    dbms: str | None  # "mysql" / "pgres" for impots sites, None for date-time
    alias: str  # "/" or "/path"

    @property
    def wsgi_file(self) -> str:
        """Entry point of the site inside ``app/`` (Contract 2)."""
        if self.kind == "date-time":
            return "date_time_server.wsgi"
        return f"main_with{self.dbms}.wsgi"

    @property
    def url(self) -> str:
        """The URL a user opens (before the app's ``prefix_url``)."""
        return f"https://{self.name}{'' if self.alias == '/' else self.alias}"


@dataclass(frozen=True)
class TlsSettings:
    source: str  # "local-ca" or "files"
    cert: str | None = None
    key: str | None = None
    ca: str | None = None


@dataclass(frozen=True)
class DatabaseSettings:
    name: str
    user: str


@dataclass(frozen=True)
class Settings:
    os: str
    sites: tuple[Site, ...]
    prefix_url: str
    with_csrftoken: bool
    with_redissession: bool
    daemon_processes: int
    daemon_threads: int
    tls: TlsSettings
    database: DatabaseSettings
    mysql_password: str | None = field(repr=False)
    pgres_password: str | None = field(repr=False)
    secret_key: str | None = field(repr=False)
    admin_mail: dict[str, Any]
    smtp_password: str | None = field(repr=False)
    users: tuple[dict[str, str], ...]
    install_root: str
    windows_layout: str
    laragon_root: str
    apache_root: str | None
    windows_python: str | None
    listen_address: str
    hosts_address: str
    # Extra Apache directives added verbatim to every HTTPS vhost (beyond Contract 3: an escape hatch
    # for local needs, e.g. headers; configtest guards against mistakes).
    vhost_extra: tuple[str, ...] = ()

    @property
    def dbms_in_use(self) -> tuple[str, ...]:
        """The DBMS that at least one site needs, in a stable order."""
        return tuple(d for d in DBMS_NAMES if any(site.dbms == d for site in self.sites))

    def site_urls(self) -> list[str]:
        """URLs to open, one per site (impots sites end with ``prefix_url``)."""
        return [site.url + (self.prefix_url if site.kind == "impots" else "/") for site in self.sites]


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


def load_settings(host: Any) -> Settings:
    """Validate ``host.data`` (a pyinfra host) and return its ``Settings``; raises ``SettingsError``."""
    data = host.data.dict() if hasattr(host.data, "dict") else dict(host.data)
    connector = getattr(host, "connector_cls", None)
    default_os = "windows" if connector is not None and connector.__name__.startswith("WinSSH") else "linux"
    return parse_settings(host.name, data, os.environ, default_os=default_os)


def parse_settings(
    host_name: str,
    data: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    default_os: str = "linux",
) -> Settings:
    """Validate plain host data (``impots_*`` keys; others are ignored) and return ``Settings``."""
    return _Parser(host_name, data, os.environ if environ is None else environ, default_os).parse()


class _Parser:
    def __init__(self, host_name: str, data: Mapping[str, Any], environ: Mapping[str, str], default_os: str):
        self.host_name = host_name
        self.data = data
        self.environ = environ
        self.default_os = default_os

    def fail(self, key: str, problem: str) -> SettingsError:
        return SettingsError(f"{self.host_name}: {key}: {problem}")

    def get(self, key: str, default: Any) -> Any:
        value = self.data.get(key)
        return default if value is None else value

    def parse(self) -> Settings:
        unknown = sorted(k for k in self.data if k.startswith("impots_") and k not in KNOWN_KEYS)
        if unknown:
            raise self.fail(unknown[0], "unknown key (a typo?); known keys are listed in group_data/all.py")

        target_os = self.choice("impots_os", self.default_os, ("linux", "windows"))
        windows = target_os == "windows"
        sites = self.sites()
        admin_mail = self.admin_mail()
        smtp_password = self.secret("impots_smtp_password")
        if admin_mail["user"] is not None and smtp_password is None:
            raise self.fail(
                "impots_smtp_password",
                "missing: impots_admin_mail has a user, give its password in data or IMPOTS_SMTP_PASSWORD",
            )
        return Settings(
            os=target_os,
            sites=sites,
            prefix_url=self.prefix_url(),
            with_csrftoken=self.boolean("impots_with_csrftoken", False),
            with_redissession=self.boolean("impots_with_redissession", True),
            daemon_processes=self.integer("impots_daemon_processes", 2, 1, 64),
            daemon_threads=self.integer("impots_daemon_threads", 15, 1, 500),
            tls=self.tls(sites),
            database=self.database(),
            mysql_password=self.secret("impots_mysql_password"),
            pgres_password=self.secret("impots_pgres_password"),
            secret_key=self.secret("impots_secret_key"),
            admin_mail=admin_mail,
            smtp_password=smtp_password,
            users=self.users(),
            install_root=self.install_root(windows),
            windows_layout=self.choice("impots_windows_layout", "laragon", WINDOWS_LAYOUTS),
            laragon_root=self.windows_path("impots_laragon_root", "C:/laragon"),
            apache_root=self.optional_windows_path("impots_apache_root"),
            windows_python=self.optional_windows_path("impots_windows_python"),
            listen_address=self.address("impots_listen_address", "127.0.0.1", allow_any=True),
            hosts_address=self.address("impots_hosts_address", "127.0.0.1", allow_any=False),
            vhost_extra=self.vhost_extra(),
        )

    # --- scalar helpers -------------------------------------------------------------------------

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.get(key, default)
        if value not in allowed:
            raise self.fail(key, f"{value!r} is not one of {', '.join(allowed)}")
        return value

    # `pyinfra --data key=value` passes strings: accept their usual spellings for booleans and integers.
    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise self.fail(key, f"{value!r} is not True or False")
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.get(key, default)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"{value!r} is not an integer from {low} to {high}")
        return value

    def secret(self, key: str) -> str | None:
        value = self.data.get(key)
        origin = "data"
        if value is None:
            value = self.environ.get(SECRET_ENVIRONMENT[key]) or None
            origin = f"environment variable {SECRET_ENVIRONMENT[key]}"
        if value is None:
            return None
        # The value itself is never echoed in a message: it is a secret.
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string (from {origin})")
        if len(value) < _MIN_PASSWORD_LENGTH:
            raise self.fail(key, f"too short (from {origin}): at least {_MIN_PASSWORD_LENGTH} characters")
        if any(c in value for c in "\n\r\0"):
            raise self.fail(key, f"contains a line break or NUL character (from {origin})")
        if key == "impots_mysql_password" and not value.isascii():
            # PyMySQL sends the password as latin-1 while the server hashed it from UTF-8: access denied.
            raise self.fail(key, f"must be ASCII for MySQL/MariaDB (from {origin})")
        return value

    def address(self, key: str, default: str, allow_any: bool) -> str:
        value = self.get(key, default)
        if allow_any and value == "*":
            return value
        try:
            ipaddress.ip_address(value)
        except (ValueError, TypeError):
            expected = "an IP address or '*'" if allow_any else "an IP address"
            raise self.fail(key, f"{value!r} is not {expected}") from None
        return value

    def prefix_url(self) -> str:
        value = self.get("impots_prefix_url", "/do")
        if not isinstance(value, str) or not _PREFIX_URL.match(value):
            raise self.fail(
                "impots_prefix_url",
                f"{value!r} must be '' or /segment or /segment/segment, "
                "without a trailing '/' or '.' segments",
            )
        return value

    def install_root(self, windows: bool) -> str:
        key = "impots_install_root"
        if windows:
            return self.windows_path(key, "C:/impots")
        value = self.get(key, "/opt/impots")
        if not isinstance(value, str) or not _LINUX_PATH.match(value) or "/." in value:
            raise self.fail(key, f"{value!r} is not an absolute path made of letters, digits, '.', '_', '-'")
        return value

    def windows_path(self, key: str, default: str) -> str:
        value = self.get(key, default)
        if not isinstance(value, str) or not _WINDOWS_PATH.match(value):
            raise self.fail(key, f"{value!r} is not an absolute Windows path like C:/folder")
        return value.replace("\\", "/")

    def optional_windows_path(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.windows_path(key, "")

    def vhost_extra(self) -> tuple[str, ...]:
        key = "impots_vhost_extra"
        raw = self.get(key, [])
        if not isinstance(raw, list | tuple) or not all(isinstance(line, str) for line in raw):
            raise self.fail(key, "must be a list of Apache directive lines (strings)")
        if any("\n" in line or "\r" in line for line in raw):
            raise self.fail(key, "one directive per list item: no line breaks inside an item")
        return tuple(raw)

    # --- structured values ------------------------------------------------------------------------

    def sites(self) -> tuple[Site, ...]:
        key = "impots_sites"
        raw = self.get(key, DEFAULT_SITES)
        if not isinstance(raw, list | tuple) or not raw:
            raise self.fail(key, "must be a non-empty list of sites")
        sites: list[Site] = []
        for index, entry in enumerate(raw):
            where = f"{key}[{index}]"
            if not isinstance(entry, Mapping):
                raise self.fail(where, f"{entry!r} is not a dict with name, kind, dbms, alias")
            extra = sorted(set(entry) - {"name", "kind", "dbms", "alias"})
            if extra:
                raise self.fail(f"{where}.{extra[0]}", "unknown site key (expected name, kind, dbms, alias)")
            name = entry.get("name")
            if not isinstance(name, str) or not is_hostname(name):
                raise self.fail(
                    f"{where}.name", f"{name!r} is not a host name (lower-case letters, digits, -)"
                )
            if any(site.name == name for site in sites):
                raise self.fail(f"{where}.name", f"duplicate site name {name!r}")
            kind = entry.get("kind", "impots")
            if kind not in SITE_KINDS:
                raise self.fail(f"{where}.kind", f"{kind!r} is not one of {', '.join(SITE_KINDS)}")
            dbms = entry.get("dbms")
            if kind == "impots" and dbms not in DBMS_NAMES:
                raise self.fail(f"{where}.dbms", f"{dbms!r} is not one of {', '.join(DBMS_NAMES)}")
            if kind == "date-time" and dbms is not None:
                raise self.fail(f"{where}.dbms", "a date-time site uses no database: remove dbms")
            alias = entry.get("alias", "/")
            if not isinstance(alias, str) or not _ALIAS.match(alias):
                raise self.fail(
                    f"{where}.alias", f"{alias!r} must be '/' or /path[/path...] without a trailing '/'"
                )
            sites.append(Site(name=name, kind=kind, dbms=dbms, alias=alias))
        return tuple(sites)

    def database(self) -> DatabaseSettings:
        key = "impots_database"
        raw = self.get(key, {})
        if not isinstance(raw, Mapping):
            raise self.fail(key, "must be a dict with name and user")
        extra = sorted(set(raw) - {"name", "user"})
        if extra:
            raise self.fail(f"{key}.{extra[0]}", "unknown key (expected name, user)")
        name = raw.get("name", "dbimpots-2019")
        user = raw.get("user", "admimpots")
        if not isinstance(name, str) or not _DB_NAME.match(name):
            raise self.fail(f"{key}.name", f"{name!r} is not a database name (letters, digits, _, -; 1-63)")
        if not isinstance(user, str) or not _DB_USER.match(user):
            raise self.fail(f"{key}.user", f"{user!r} is not a user name (letters, digits, _; 1-32)")
        return DatabaseSettings(name=name, user=user)

    def admin_mail(self) -> dict[str, Any]:
        key = "impots_admin_mail"
        raw = self.get(key, {})
        if not isinstance(raw, Mapping):
            raise self.fail(key, "must be a dict")
        extra = sorted(set(raw) - set(DEFAULT_ADMIN_MAIL))
        if extra:
            raise self.fail(f"{key}.{extra[0]}", f"unknown key (expected {', '.join(DEFAULT_ADMIN_MAIL)})")
        mail = {**DEFAULT_ADMIN_MAIL, **raw}
        if not isinstance(mail["smtp_server"], str) or not mail["smtp_server"]:
            raise self.fail(f"{key}.smtp_server", "must be a non-empty host name")
        port = mail["smtp_port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise self.fail(f"{key}.smtp_port", f"{port!r} is not a port number (1-65535)")
        for address_key in ("from", "to"):
            address = mail[address_key]
            if not isinstance(address, str) or not _EMAIL.match(address):
                raise self.fail(f"{key}.{address_key}", f"{address!r} is not a mail address")
        if not isinstance(mail["subject"], str):
            raise self.fail(f"{key}.subject", "must be a string")
        if not isinstance(mail["tls"], bool):
            raise self.fail(f"{key}.tls", f"{mail['tls']!r} is not True or False")
        if mail["user"] is not None and (not isinstance(mail["user"], str) or not mail["user"]):
            raise self.fail(f"{key}.user", "must be None or a non-empty string")
        return mail

    def users(self) -> tuple[dict[str, str], ...]:
        key = "impots_users"
        raw = self.get(key, [{"login": "admin", "password_hash": DEFAULT_ADMIN_HASH}])
        if not isinstance(raw, list | tuple) or not raw:
            raise self.fail(key, "must be a non-empty list of {login, password_hash}")
        users = []
        for index, entry in enumerate(raw):
            where = f"{key}[{index}]"
            if not isinstance(entry, Mapping) or set(entry) != {"login", "password_hash"}:
                raise self.fail(where, "must be a dict with exactly login and password_hash")
            login, password_hash = entry["login"], entry["password_hash"]
            if not isinstance(login, str) or not login.strip():
                raise self.fail(f"{where}.login", "must be a non-empty string")
            if not isinstance(password_hash, str) or not password_hash.startswith("$pbkdf2-sha256$"):
                raise self.fail(
                    f"{where}.password_hash",
                    "must be a passlib pbkdf2_sha256 hash ($pbkdf2-sha256$...), never a clear password",
                )
            users.append({"login": login, "password_hash": password_hash})
        return tuple(users)

    def tls(self, sites: tuple[Site, ...]) -> TlsSettings:
        key = "impots_tls"
        raw = self.get(key, {"source": "local-ca"})
        if not isinstance(raw, Mapping):
            raise self.fail(key, "must be a dict with a source")
        source = raw.get("source")
        if source == "local-ca":
            if set(raw) != {"source"}:
                raise self.fail(key, "source 'local-ca' takes no other key")
            return TlsSettings(source="local-ca")
        if source != "files":
            raise self.fail(f"{key}.source", f"{source!r} is not one of local-ca, files")
        extra = sorted(set(raw) - {"source", "cert", "key", "ca"})
        if extra:
            raise self.fail(f"{key}.{extra[0]}", "unknown key (expected source, cert, key, ca)")
        paths = {}
        for part in ("cert", "key", "ca"):
            value = raw.get(part)
            if value is None and part == "ca":
                paths[part] = None
                continue
            if not isinstance(value, str) or not os.path.isfile(value):
                raise self.fail(f"{key}.{part}", f"{value!r} is not a readable file on the controller")
            paths[part] = os.path.abspath(value)
        problem = check_certificate_files(paths["cert"], paths["key"], paths["ca"], [s.name for s in sites])
        if problem:
            raise self.fail(key, problem)
        return TlsSettings(source="files", **paths)


def is_hostname(name: str) -> bool:
    """True for a DNS host name made of lower-case labels (what Apache and the hosts file accept)."""
    return 0 < len(name) <= 253 and all(_HOST_LABEL.match(label) for label in name.split("."))


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


def check_certificate_files(cert: str, key: str, ca: str | None, site_names: list[str]) -> str | None:
    """Return what is wrong with user-supplied TLS files, or None (uses the controller's openssl)."""
    result = _openssl("x509", "-noout", "-in", cert, "-ext", "subjectAltName")
    if result.returncode != 0:
        return f"cert {cert} is not a PEM certificate: {result.stderr.strip().splitlines()[-1:]}"
    sans = set(re.findall(r"DNS:([^,\s]+)", result.stdout))
    uncovered = [name for name in site_names if not _covered(name, sans)]
    if uncovered:
        return f"cert {cert} has no subjectAltName for {', '.join(uncovered)}"
    cert_key = _openssl("x509", "-noout", "-pubkey", "-in", cert)
    # The key path is on the command line, never the key itself.
    private_key = _openssl("pkey", "-pubout", "-in", key, "-passin", "pass:")
    if private_key.returncode != 0:
        return f"key {key} is not an unencrypted PEM private key"
    if cert_key.stdout.strip() != private_key.stdout.strip():
        return f"key {key} does not match cert {cert}"
    if ca is not None:
        verify = _openssl("verify", "-CAfile", ca, cert)
        if verify.returncode != 0:
            return f"cert {cert} is not signed by ca {ca}"
    return None


def _covered(name: str, sans: set[str]) -> bool:
    if name in sans:
        return True
    head, _, parent = name.partition(".")
    return bool(parent) and f"*.{parent}" in sans
