"""The host data model (Contract 3 of docs/architecture.md): every ``impots_*`` key, its type and default.

``parse_settings`` validates plain data into a frozen ``Settings``; the first bad value becomes
``SettingsError("<host>: <key>: <what is wrong>")``. Field types and their messages are in ``fields.py``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass as record

from provisioning.settings.certificates import check_certificate_files
from provisioning.settings.fields import (
    AdminAccount,
    Alias,
    Bool,
    ControllerFile,
    DatabaseName,
    DatabaseUser,
    HostName,
    IpAddress,
    LinuxPath,
    MailAddress,
    Port,
    PrefixUrl,
    Problem,
    Text,
    WindowsAccount,
    WindowsPath,
    integer,
    list_of,
    one_of,
    valid,
)

DEFAULT_ADMIN_HASH = "$pbkdf2-sha256$29000$QsiZkzKmNEYoxXjP2fsfww$lS2z/2xVSsbZqkfUmZkyhmz7lSeyxN6dfoR616/NDvk"
# Secret keys: from data, else from the environment variable IMPOTS_<NAME> (never echoed in a message).
SECRETS = ("mysql_password", "pgres_password", "secret_key", "smtp_password")
WINDOWS_SECRETS = ("mysql_admin_password", "pgres_admin_password")
# Where the app reaches its services (written into impots.json; the Windows deploy probes the same).
SERVICES = {"mysql": ("127.0.0.1", 3306), "pgres": ("127.0.0.1", 5432), "redis": ("127.0.0.1", 6379)}
SITE_KINDS = ("impots", "date-time")
DBMS_NAMES = ("mysql", "pgres")
WINDOWS_LAYOUTS = ("laragon", "apache-lounge")
# The pinned mod_wsgi first; the 5.0 line is the fallback for a host where 6.x does not build.
MOD_WSGI_VERSIONS = ("6.1.1", "5.0.2")

_MIN_PASSWORD_LENGTH = 8


class SettingsError(ValueError):
    """Bad host data: the message is ``<host>: <key>: <what is wrong>``."""


# --- records inside the host data: unknown keys refused ------------------------------------------------

_RECORD = ConfigDict(extra="forbid")
_INSTALL_ROOTS = {"windows": TypeAdapter(WindowsPath), "linux": TypeAdapter(LinuxPath)}


@record(frozen=True, config=_RECORD)
class Site:
    name: HostName
    kind: one_of(*SITE_KINDS) = "impots"
    dbms: one_of(*DBMS_NAMES, None) = None  # None for date-time sites
    alias: Alias = "/"

    @model_validator(mode="after")
    def _dbms_matches_kind(self) -> Site:
        if self.kind == "impots" and self.dbms is None:
            raise Problem(f"None is not one of {', '.join(DBMS_NAMES)}", "dbms")
        if self.kind == "date-time" and self.dbms is not None:
            raise Problem("a date-time site uses no database: remove dbms", "dbms")
        return self

    @property
    def wsgi_file(self) -> str:
        """Entry point of the site inside ``app/`` (Contract 2)."""
        return "date_time_server.wsgi" if self.kind == "date-time" else f"main_with{self.dbms}.wsgi"

    @property
    def url(self) -> str:
        """The URL a user opens (before the app's ``prefix_url``)."""
        return f"https://{self.name}{'' if self.alias == '/' else self.alias}"


@record(frozen=True, config=_RECORD)
class TlsSettings:
    source: one_of("local-ca", "files")
    cert: ControllerFile | None = None
    key: ControllerFile | None = None
    ca: ControllerFile | None = None

    @model_validator(mode="after")
    def _files_match_source(self) -> TlsSettings:
        if self.source == "local-ca" and (self.cert, self.key, self.ca) != (None, None, None):
            raise Problem("source 'local-ca' takes no other key")
        for part in ("cert", "key"):
            if self.source == "files" and getattr(self, part) is None:
                raise Problem("None is not a readable file on the controller", part)
        return self


@record(frozen=True, config=_RECORD)
class DatabaseSettings:
    name: DatabaseName = "dbimpots-2019"
    user: DatabaseUser = "admimpots"


class _AdminMail(BaseModel):
    """Contract 1's ``admin_mail``; ``Settings.admin_mail`` holds it as a plain dict."""

    model_config = _RECORD
    smtp_server: Annotated[Text, valid("must be a non-empty host name", bool)] = "localhost"
    smtp_port: Port = 25
    sender: MailAddress = Field("guest@localhost.com", alias="from")
    to: MailAddress = "guest@localhost.com"
    subject: Annotated[Text, valid("must be a string")] = "plantage du serveur de calcul d'impôts"
    tls: Bool = False
    user: Annotated[Text | None, valid("must be None or a non-empty string", lambda user: user != "")] = None


class _User(BaseModel):
    model_config = _RECORD
    login: Annotated[Text, valid("must be a non-empty string", str.strip)]
    # Never echoed: a clear password put here by mistake must not reach a log.
    password_hash: Annotated[
        Text,
        valid(
            "must be a passlib pbkdf2_sha256 hash ($pbkdf2-sha256$...), never a clear password",
            lambda value: value.startswith("$pbkdf2-sha256$"),
        ),
    ]


def _as_dict(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(by_alias=True)


DEFAULT_ADMIN_MAIL = _as_dict(_AdminMail())
_RECORDS = {
    "impots_sites": Site,
    "impots_tls": TlsSettings,
    "impots_database": DatabaseSettings,
    "impots_admin_mail": _AdminMail,
    "impots_users": _User,
}
Secret = Annotated[str | None, Field(repr=False)]


# --- the settings --------------------------------------------------------------------------------------


class Settings(BaseModel):
    """A host's validated data: one attribute per ``impots_<name>`` key (Contract 3)."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=lambda name: f"impots_{name}")

    os: one_of("linux", "windows") = "linux"
    sites: Annotated[tuple[Site, ...], list_of("sites", 1)] = (
        Site("flask-impots-withmysql", "impots", "mysql", "/impots"),
        Site("flask-impots-withpgres", "impots", "pgres", "/impots"),
        Site("date-time-server", "date-time", None, "/"),
    )
    prefix_url: PrefixUrl = "/do"
    with_csrftoken: Bool = False
    with_redissession: Bool = True
    max_request_bytes: integer(1024, 10 * 1024 * 1024) = 65536  # the app's limit; Apache's follows
    redis_maxmemory_mb: integer(16, 65536) = 64  # Redis' memory limit (Linux; Laragon's Redis on Windows)
    daemon_processes: integer(1, 64) = 2
    daemon_threads: integer(1, 500) = 15
    mod_wsgi_version: one_of(*MOD_WSGI_VERSIONS) = MOD_WSGI_VERSIONS[0]
    tls: TlsSettings = TlsSettings("local-ca")
    hsts_max_age: integer(0) = 31536000
    lock_wait: integer(0, 3600) = 120  # seconds a run waits for another deploy of the same host
    database: DatabaseSettings = DatabaseSettings()
    mysql_password: Secret = None
    pgres_password: Secret = None
    secret_key: Secret = None
    admin_mail: Annotated[_AdminMail, AfterValidator(_as_dict)] = Field(
        default_factory=lambda: dict(DEFAULT_ADMIN_MAIL)
    )
    smtp_password: Secret = None
    users: Annotated[
        tuple[Annotated[_User, AfterValidator(_as_dict)], ...], list_of("{login, password_hash}", 1)
    ] = ({"login": "admin", "password_hash": DEFAULT_ADMIN_HASH},)
    install_root: str = Field(None, validate_default=True)  # its default depends on os
    listen_address: Annotated[IpAddress | Literal["*"], valid("{value!r} is not an IP address or '*'")] = (
        "127.0.0.1"
    )
    hosts_address: IpAddress = "127.0.0.1"
    # Extra Apache directives added verbatim to every HTTPS vhost (an escape hatch for local needs,
    # e.g. headers; configtest guards against mistakes).
    vhost_extra: tuple[str, ...] = ()
    # Windows only.
    windows_layout: one_of(*WINDOWS_LAYOUTS) = "laragon"
    laragon_root: WindowsPath = "C:/laragon"
    apache_root: WindowsPath | None = None
    windows_python: WindowsPath | None = None
    windows_trust_ca: Bool = True
    windows_apache_accounts: Annotated[tuple[WindowsAccount, ...], list_of("Windows account names")] = ()
    mysql_admin_user: AdminAccount = "root"
    mysql_admin_password: Secret = None
    pgres_admin_user: AdminAccount = "postgres"
    pgres_admin_password: Secret = None

    @field_validator(*SECRETS, mode="before")
    @classmethod
    def _app_secret(cls, value: Any, info: ValidationInfo) -> str:
        origin = _origin(info)
        if not isinstance(value, str):
            raise ValueError(f"must be a string (from {origin})")
        if len(value) < _MIN_PASSWORD_LENGTH:
            raise ValueError(f"too short (from {origin}): at least {_MIN_PASSWORD_LENGTH} characters")
        if any(c in value for c in "\n\r\0"):
            raise ValueError(f"contains a line break or NUL character (from {origin})")
        if info.field_name == "mysql_password" and not value.isascii():
            # PyMySQL sends the password as latin-1 while the server hashed it from UTF-8: access denied.
            raise ValueError(f"must be ASCII for MySQL/MariaDB (from {origin})")
        return value

    @field_validator(*WINDOWS_SECRETS, mode="before")
    @classmethod
    def _admin_secret(cls, value: Any, info: ValidationInfo) -> str:
        # No minimum length: these are the DBMS's own accounts, whatever their passwords are.
        if not isinstance(value, str) or any(c in value for c in "\n\r\0"):
            raise ValueError(f"must be a string without line breaks or NUL (from {_origin(info)})")
        return value

    @field_validator("install_root", mode="before")
    @classmethod
    def _install_root_for_os(cls, value: Any, info: ValidationInfo) -> Any:
        windows = info.data.get("os") == "windows"
        if value is None:
            return "C:/impots" if windows else "/opt/impots"
        return _INSTALL_ROOTS["windows" if windows else "linux"].validate_python(value)

    @field_validator("vhost_extra", mode="before")
    @classmethod
    def _one_directive_per_line(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple) or not all(isinstance(line, str) for line in value):
            raise ValueError("must be a list of Apache directive lines (strings)")
        if any("\n" in line or "\r" in line for line in value):
            raise ValueError("one directive per list item: no line breaks inside an item")
        return value

    @field_validator("sites")
    @classmethod
    def _distinct_names(cls, sites: tuple[Site, ...]) -> tuple[Site, ...]:
        for index, site in enumerate(sites):
            if any(other.name == site.name for other in sites[:index]):
                raise Problem(f"duplicate site name {site.name!r}", index, "name")
        return sites

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.admin_mail["user"] is not None and self.smtp_password is None:
            problem = (
                "missing: impots_admin_mail has a user, give its password in data or IMPOTS_SMTP_PASSWORD"
            )
            raise Problem(problem, "impots_smtp_password")
        if self.tls.source == "files":
            names = [site.name for site in self.sites]
            problem = check_certificate_files(self.tls.cert, self.tls.key, self.tls.ca, names)
            if problem:
                raise Problem(problem, "impots_tls")
        return self

    @property
    def dbms_in_use(self) -> tuple[str, ...]:
        """The DBMS that at least one site needs, in a stable order."""
        return tuple(d for d in DBMS_NAMES if any(site.dbms == d for site in self.sites))

    def site_urls(self) -> list[str]:
        """URLs to open, one per site (impots sites end with ``prefix_url``)."""
        return [site.url + (self.prefix_url if site.kind == "impots" else "/") for site in self.sites]


def _origin(info: ValidationInfo) -> str:
    variable = (info.context or {}).get("from_environment", {}).get(info.field_name)
    return f"environment variable {variable}" if variable else "data"


# --- entry points --------------------------------------------------------------------------------------


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
    environ = os.environ if environ is None else environ
    given = {key: value for key, value in data.items() if key.startswith("impots_") and value is not None}
    given.setdefault("impots_os", default_os)
    # A typo in a key name comes first: it explains the rest.
    unknown = sorted(set(given) - {field.alias for field in Settings.model_fields.values()})
    if unknown:
        raise SettingsError(
            f"{host_name}: {unknown[0]}: unknown key (a typo?); known keys are listed in group_data/all.py"
        )
    from_environment = {}
    for name in SECRETS + WINDOWS_SECRETS:
        variable = f"IMPOTS_{name.upper()}"
        if f"impots_{name}" not in given and environ.get(variable):
            given[f"impots_{name}"], from_environment[name] = environ[variable], variable
    try:
        return Settings.model_validate(given, context={"from_environment": from_environment})
    except ValidationError as error:
        raise SettingsError(f"{host_name}: {_message(error.errors()[0])}") from None


def _message(error: Any) -> str:
    """``<key>: <problem>`` for one pydantic error (pydantic's own words only as a last resort)."""
    where, kind, cause = list(error["loc"]), error["type"], error.get("ctx", {}).get("error")
    if isinstance(cause, Problem):
        where += cause.where
    fields = _RECORDS[where[0]].__pydantic_fields__ if where and where[0] in _RECORDS else {}
    expected = ", ".join(field.alias or name for name, field in fields.items())
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        problem = f"unknown key (expected {expected})"
    elif kind in ("model_type", "dataclass_type", "model_attributes_type"):
        problem = f"must be a dict with {expected}"
    else:
        problem = str(cause) if cause is not None else error["msg"]
    key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in where)
    return f"{key.lstrip('.')}: {problem}"
