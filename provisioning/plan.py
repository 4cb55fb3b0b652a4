"""What one host gets: its desired state, computed once from its settings and its platform record.

Read this module to know what any host will get, on Linux or on Windows. The two backends
(``linux/deploy.py``, ``windows/deploy.py``) only apply a ``HostPlan`` with their own primitives:
chown/chmod or ACLs, init scripts or Windows services, ``apachectl`` or ``httpd.exe -t``.

Every decision below is written once for both platforms:
- the folders of the install root and who may read or write each (``Access``);
- the instance configuration (``impots.json``, Contract 1) and the secrets to keep or generate;
- the database accounts; the TLS material (one recipe: a local CA made on the controller, or given files);
- one vhost per site from one template, its smoke-check URL and the text its page must show;
- what Apache depends on: a change to any of it needs a reload (the stamp rule of ``reload_watch``).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

from jinja2 import Environment, FunctionLoader, StrictUndefined

from provisioning.artifact import ARTIFACTS_DIR, app_requirements
from provisioning.settings import AppPaths, Settings, Site, app_paths, instance_config_json
from provisioning.site_users import site_secret_key, site_user
from provisioning.tls import local_ca_files

# Text the smoke check expects in each kind of site's page (spec §6 banner, §10 page).
SMOKE_EXPECT = {"impots": "Calculez votre impôt", "date-time": "Date et heure du moment"}
SECRET_KEYS = ("secret_key", "mysql_password", "pgres_password", "smtp_password")


class Access(enum.Enum):
    """Who may use a folder or file; each backend maps it to modes/owners or to an ACL."""

    PRIVATE = "administrators only"  # root 0700/0600; Administrators + SYSTEM
    PUBLIC = "everyone reads"  # 0755/0644: the tree's plain folders and Apache's own configuration
    APACHE_READ = "Apache reads"  # 0750/0640 root:<apache group>; + read for the Apache account
    APACHE_WRITE = "Apache writes"  # the logs


class PlatformRecord(Protocol):
    """What the plan needs of a platform record (``linux/platforms.py``, ``windows/platforms.py``)."""

    wsgi_daemon: bool  # mod_wsgi daemon mode (Linux) or embedded (Windows)
    guard_modules: bool  # guard mod_ssl/mod_wsgi directives with <IfModule> (shared vhost folders)
    apache_log_dir: str

    def vhost_file(self, site_name: str) -> str: ...

    def state_dir(self, install_root: str) -> str: ...

    def venv_markers(self, venv: str) -> tuple[str, ...]: ...


class MaskedSecrets(dict):
    """A dict of secrets whose repr never shows the values (operation arguments may be printed)."""

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{key!r}: '***'" for key in self) + "}"


@dataclass(frozen=True)
class TargetPaths(AppPaths):
    """``AppPaths`` plus the provisioning's own places on the target."""

    instance_dir: str = ""  # the real instance folder; each release's app/instance points to it
    tls_dir: str = ""
    state_dir: str = ""  # administrators only: config snapshot, reload stamp, transit of given secrets
    helper: str = ""  # the target helper (Linux)

    @property
    def snapshot(self) -> str:
        return f"{self.state_dir}/apache-config-before.tar"

    @property
    def stamp(self) -> str:
        return f"{self.state_dir}/apache-applied.stamp"

    @property
    def data_stamp(self) -> str:
        """Touched when the deploy repairs the tax data: the apps must reload to read it."""
        return f"{self.state_dir}/data-seeded.stamp"

    @property
    def seeder_secrets(self) -> str:
        """Passwords of the seeding accounts (root only: the app's accounts may only read)."""
        return f"{self.state_dir}/seeder-secrets.json"

    @property
    def instance_config(self) -> str:
        return f"{self.instance_dir}/impots.json"

    @property
    def instance_secrets(self) -> str:
        return f"{self.instance_dir}/secrets.json"


@dataclass(frozen=True)
class Folder:
    path: str
    access: Access


@dataclass(frozen=True)
class TlsPlan:
    cert: str  # target paths
    key: str
    chain: str | None  # CA certificate sent to clients (given files with a CA), else None
    trust_anchor: str  # what the target's smoke check trusts (the CA, or the certificate itself)
    uploads: tuple[tuple[str, str, Access], ...]  # (controller file, target file, access)
    client_ca: str | None  # controller file users point clients at (.artifacts/<host>/impots-ca.pem)


@dataclass(frozen=True)
class SitePlan:
    site: Site
    vhost_file: str
    vhost: str
    smoke_url: str
    expect: str
    error_log: str


@dataclass(frozen=True)
class SecretsPlan:
    path: str
    given: MaskedSecrets  # key -> value from host data or the controller's environment
    generate: tuple[str, ...]  # keys generated once on the target when absent
    # Where each site runs as its own user (Linux): each impots site's own keys (``<key>@<site>``),
    # also generated once on the target; the store keeps them, each site's file gets its own.
    per_site: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatabasePlan:
    dbms: tuple[str, ...]  # the DBMS the sites use ("mysql", "pgres")
    name: str
    user: str


@dataclass(frozen=True)
class HostPlan:
    settings: Settings
    platform: Any  # a PlatformRecord
    paths: TargetPaths
    folders: tuple[Folder, ...]
    instance_config: str  # impots.json text
    secrets: SecretsPlan
    databases: DatabasePlan
    tls: TlsPlan
    sites: tuple[SitePlan, ...]
    hosts_names: tuple[str, ...]
    requirements: str  # requirements/app.txt, installed in the venv
    requirements_sha256: str
    mod_wsgi_version: str
    reload_watch: tuple[str, ...]  # a change under any of these since the stamp needs an Apache reload
    # The part of reload_watch that only the app reads: where the app runs in mod_wsgi daemons (Linux),
    # a change there alone restarts the daemons, not Apache (issue 8 #3: a graceful drops requests).
    app_watch: tuple[str, ...] = ()


def host_plan(
    host_name: str, settings: Settings, platform: PlatformRecord, redis_auth: bool = False
) -> HostPlan:
    """The whole desired state of one host; ``redis_auth``: the backend sets the Redis password."""
    paths = target_paths(settings, platform)
    tls = tls_plan(host_name, settings, paths)
    requirements = app_requirements()
    return HostPlan(
        settings=settings,
        platform=platform,
        paths=paths,
        folders=folders(paths),
        instance_config=instance_config_json(settings, paths),
        secrets=secrets_plan(settings, paths, redis_auth, own_secrets=platform.wsgi_daemon),
        databases=DatabasePlan(settings.dbms_in_use, settings.database.name, settings.database.user),
        tls=tls,
        sites=tuple(site_plan(settings, platform, paths, tls, site) for site in settings.sites),
        hosts_names=tuple(site.name for site in settings.sites),
        requirements=requirements,
        requirements_sha256=hashlib.sha256(requirements.encode()).hexdigest(),
        mod_wsgi_version=settings.mod_wsgi_version,
        reload_watch=(
            paths.app,
            *platform.venv_markers(paths.venv),
            paths.instance_config,
            paths.instance_secrets,
            paths.data_stamp,
            tls.cert,
            tls.key,
        ),
        app_watch=(
            paths.app,
            *platform.venv_markers(paths.venv),
            paths.instance_config,
            paths.instance_secrets,
            paths.data_stamp,
        ),
    )


def target_paths(settings: Settings, platform: PlatformRecord) -> TargetPaths:
    shared = app_paths(settings)
    root = shared.install_root
    return TargetPaths(
        **vars(shared),
        instance_dir=f"{root}/instance",
        tls_dir=f"{root}/tls",
        state_dir=platform.state_dir(root),
        helper=f"{root}/bin/impots-helper.pyz",
    )


def folders(paths: TargetPaths) -> tuple[Folder, ...]:
    return (
        Folder(paths.install_root, Access.PUBLIC),
        Folder(f"{paths.install_root}/bin", Access.PRIVATE),
        Folder(paths.releases, Access.PUBLIC),
        Folder(paths.document_root, Access.PUBLIC),
        Folder(paths.instance_dir, Access.APACHE_READ),
        Folder(f"{paths.instance_dir}/logs", Access.APACHE_WRITE),
        Folder(paths.tls_dir, Access.PRIVATE),
        Folder(paths.state_dir, Access.PRIVATE),
    )


def redis_in_use(settings: Settings) -> bool:
    """The app's sites keep sessions (and login throttling) in Redis."""
    return settings.with_redissession and bool(settings.dbms_in_use)


def secrets_plan(
    settings: Settings, paths: TargetPaths, redis_auth: bool = False, own_secrets: bool = False
) -> SecretsPlan:
    """``own_secrets``: each impots site runs as its own user (Linux daemons) and gets its own Flask key
    and Redis password (``<key>@<site>``), so that no site can read or forge another's sessions."""
    given = {key: getattr(settings, key) for key in SECRET_KEYS if getattr(settings, key) is not None}
    wanted = ("secret_key", *(f"{dbms}_password" for dbms in settings.dbms_in_use))
    if redis_auth and redis_in_use(settings):
        # Only where the backend also sets it on the server: a password Redis does not expect fails AUTH.
        wanted += ("redis_password",)
    per_site: tuple[str, ...] = ()
    for site in settings.sites if own_secrets else ():
        if site.kind != "impots":
            continue
        per_site += (site_secret_key(site.name, "secret_key"),)
        if "redis_password" in wanted:
            per_site += (site_secret_key(site.name, "redis_password"),)
        if settings.secret_key is not None:
            # A given key (shared by hosts behind one name) stays the source: each site's is derived
            # from it, the same on every host, and no site's key tells another's.
            derived = hmac.new(settings.secret_key.encode(), site.name.encode(), hashlib.sha256).hexdigest()
            given[site_secret_key(site.name, "secret_key")] = derived
    return SecretsPlan(
        paths.instance_secrets,
        MaskedSecrets(given),
        tuple(key for key in wanted if key not in given),
        tuple(key for key in per_site if key not in given),
    )


def tls_plan(host_name: str, settings: Settings, paths: TargetPaths) -> TlsPlan:
    """Given files, or one recipe on every platform: a local CA and certificate made on the controller."""
    cert, key, ca = f"{paths.tls_dir}/server.pem", f"{paths.tls_dir}/server.key", f"{paths.tls_dir}/ca.pem"
    if settings.tls.source == "files":
        uploads = [(settings.tls.cert, cert, Access.PUBLIC), (settings.tls.key, key, Access.PRIVATE)]
        if settings.tls.ca:
            uploads.append((settings.tls.ca, ca, Access.PUBLIC))
        chain = ca if settings.tls.ca else None
        # Without a CA file the certificate itself is the trust anchor (curl accepts a partial chain).
        return TlsPlan(cert, key, chain, chain or cert, tuple(uploads), settings.tls.ca)
    made = local_ca_files(host_name, [site.name for site in settings.sites], ARTIFACTS_DIR)
    uploads = (
        (made.cert, cert, Access.PUBLIC),
        (made.key, key, Access.PRIVATE),
        (made.ca, ca, Access.PUBLIC),
    )
    return TlsPlan(cert, key, None, ca, uploads, made.client_ca)


def site_plan(
    settings: Settings, platform: PlatformRecord, paths: TargetPaths, tls: TlsPlan, site: Site
) -> SitePlan:
    return SitePlan(
        site=site,
        vhost_file=platform.vhost_file(site.name),
        vhost=render("vhost.conf.j2", site=site, settings=settings, paths=paths, platform=platform, tls=tls),
        smoke_url=smoke_url(settings, site),
        expect=SMOKE_EXPECT[site.kind],
        error_log=f"{platform.apache_log_dir}/{site.name}-error.log",
    )


def smoke_url(settings: Settings, site: Site) -> str:
    base = "" if site.alias == "/" else site.alias
    if site.kind == "impots":
        return f"https://{site.name}{base}{settings.prefix_url}/"
    return f"https://{site.name}{base}/"


# --- templates: package data next to this module (provisioning/templates/) ---------------------------


def _load_template(name: str) -> str:
    return resources.files("provisioning").joinpath("templates", *name.split("/")).read_text("utf-8")


def security_headers(settings: Settings) -> list[tuple[str, str]]:
    """The response headers every site sends (the vhost template sets them in Apache)."""
    return [
        ("Strict-Transport-Security", f"max-age={settings.hsts_max_age}"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", "frame-ancestors 'none'"),
        ("Referrer-Policy", "same-origin"),
    ]


TEMPLATES = Environment(
    loader=FunctionLoader(_load_template), undefined=StrictUndefined, keep_trailing_newline=True
)
TEMPLATES.globals["security_headers"] = security_headers
TEMPLATES.globals["site_user"] = site_user  # Linux daemons run as the site's own user


def render(template: str, **variables: Any) -> str:
    """Render one of our templates (StrictUndefined: a typo fails the plan, not Apache)."""
    return TEMPLATES.get_template(template).render(**variables)
