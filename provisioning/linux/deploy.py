"""``deploy_linux``: the whole stack on a Debian/Ubuntu or RHEL-family host (Contract 5)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import files

from provisioning.artifact import APP_SOURCE, REPO_ROOT, build_app_artifact
from provisioning.linux.facts import BindError, InitSystem, VenvState
from provisioning.linux.operations.apache import apache_applied, apache_enabled, apache_file
from provisioning.linux.operations.app import (
    MaskedSecrets,
    app_release,
    app_venv,
    mod_wsgi_installed,
    private_file,
    secrets_file,
)
from provisioning.linux.operations.databases import database_seeded, mysql_database, postgresql_database
from provisioning.linux.operations.hosts import hosts_block
from provisioning.linux.operations.system import (
    line_commented_out,
    packages_installed,
    postgresql_initialized,
    service_running,
)
from provisioning.linux.operations.tls import ca_fetched, local_ca_certificate
from provisioning.linux.platforms import LinuxPlatform, choose_platform
from provisioning.settings import AppPaths, Settings, SettingsError, app_paths

TEMPLATES = REPO_ROOT / "templates"
FILES = REPO_ROOT / "files"
MOD_WSGI_VERSION = "6.1.1"
# Text the smoke check expects in each kind of site's page (spec §6 banner, §10 page).
SMOKE_EXPECT = {"impots": "Calculez votre impôt", "date-time": "Date et heure du moment"}


@dataclass(frozen=True)
class LinuxPaths:
    """Target paths of the Linux deploy beside the shared ``AppPaths``."""

    instance_dir: str  # the real instance folder; every release links <release>/instance to it
    helper: str
    state_dir: str  # root-only: snapshot, stamp, transit of given secrets
    snapshot: str
    stamp: str
    tls_dir: str

    @property
    def ca_file(self) -> str:
        return f"{self.tls_dir}/ca.pem"


def linux_paths(paths: AppPaths) -> LinuxPaths:
    state_dir = "/var/lib/impots-provisioning"
    return LinuxPaths(
        instance_dir=f"{paths.install_root}/instance",
        helper=f"{paths.install_root}/bin/impots-helper.py",
        state_dir=state_dir,
        snapshot=f"{state_dir}/apache-config-before.tar",
        stamp=f"{state_dir}/apache-applied.stamp",
        tls_dir=f"{paths.install_root}/tls",
    )


def render(template: str, **variables) -> str:
    """Render one of our templates to text (StrictUndefined: a typo fails the plan, not Apache)."""
    environment = Environment(
        loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined, keep_trailing_newline=True
    )
    return environment.get_template(template).render(**variables)


def smoke_url(settings: Settings, site) -> str:
    base = "" if site.alias == "/" else site.alias
    if site.kind == "impots":
        return f"https://{site.name}{base}{settings.prefix_url}/"
    return f"https://{site.name}{base}/"


@deploy("impots: Linux host")
def deploy_linux(settings: Settings) -> None:
    """Provision Apache + mod_wsgi, MariaDB, PostgreSQL, Redis and the impots app on a Linux host."""
    platform = choose_platform(host.get_fact(LinuxDistribution))
    init = host.get_fact(InitSystem)
    paths = app_paths(settings)
    lpaths = linux_paths(paths)
    family = platform.family
    _check_listen_address(settings)

    packages_installed(name="Packages (Apache, build tools, databases)", platform=family)
    postgresql_initialized(name="PostgreSQL cluster", platform=family)
    for service in platform.database_services:
        service_running(name=f"Service {service} running", platform=family, init=init, service=service)

    _folders(platform, paths, lpaths)
    files.put(
        name="Target helper (secrets, databases, Apache transaction)",
        src=str(FILES / "impots_helper.py"),
        dest=lpaths.helper,
        user="root",
        group="root",
        mode="700",
    )

    artifact = build_app_artifact()
    app_release(
        name="App release", artifact=artifact.path, sha256=artifact.sha256, install_root=paths.install_root
    )
    requirements_sha = hashlib.sha256((APP_SOURCE / "requirements.txt").read_bytes()).hexdigest()
    app_venv(
        name="App virtual environment",
        venv=paths.venv,
        python=platform.system_python,
        requirements=f"{paths.app}/requirements.txt",
        requirements_sha256=requirements_sha,
    )
    mod_wsgi_installed(
        name=f"mod_wsgi {MOD_WSGI_VERSION}", venv=paths.venv, apxs=platform.apxs, version=MOD_WSGI_VERSION
    )

    _instance_config(settings, platform, paths, lpaths)
    _databases(settings, paths, lpaths)
    tls = _tls(settings, lpaths)
    _apache(settings, platform, init, paths, lpaths, tls)
    hosts_block(
        name="Hosts file block", address=settings.hosts_address, names=[site.name for site in settings.sites]
    )
    _apply(settings, platform, init, paths, lpaths, tls)


def _check_listen_address(settings: Settings) -> None:
    """Apache's configtest does not bind: an address foreign to the target would only fail the reload."""
    if settings.listen_address == "*":
        return
    problem = host.get_fact(BindError, address=settings.listen_address)
    if problem:
        address = settings.listen_address
        problem = f"{address} cannot be used on this host ({problem})"
        raise SettingsError(f"{host.name}: impots_listen_address: {problem}")


def _folders(platform: LinuxPlatform, paths: AppPaths, lpaths: LinuxPaths) -> None:
    group = platform.apache_group
    for path, user, group_, mode in (
        (paths.install_root, "root", "root", "755"),
        (f"{paths.install_root}/bin", "root", "root", "700"),
        (paths.releases, "root", "root", "755"),
        (paths.document_root, "root", "root", "755"),
        (lpaths.instance_dir, "root", group, "750"),
        (f"{lpaths.instance_dir}/logs", platform.apache_user, group, "750"),
        (lpaths.tls_dir, "root", "root", "700"),
        (lpaths.state_dir, "root", "root", "700"),
    ):
        files.directory(name=f"Folder {path}", path=path, user=user, group=group_, mode=mode)


def _instance_config(
    settings: Settings, platform: LinuxPlatform, paths: AppPaths, lpaths: LinuxPaths
) -> None:
    given = {
        key: value
        for key, value in (
            ("secret_key", settings.secret_key),
            ("mysql_password", settings.mysql_password),
            ("pgres_password", settings.pgres_password),
            ("smtp_password", settings.smtp_password),
        )
        if value is not None
    }
    generate = ["secret_key", *(f"{dbms}_password" for dbms in settings.dbms_in_use)]
    secrets_file(
        name="App secrets (secrets.json)",
        helper=lpaths.helper,
        path=f"{lpaths.instance_dir}/secrets.json",
        group=platform.apache_group,
        given=MaskedSecrets(given),
        generate=[key for key in generate if key not in given],
        upload_dir=lpaths.state_dir,
    )
    files.template(
        name="App configuration (impots.json)",
        src=str(TEMPLATES / "common" / "impots.json.j2"),
        dest=f"{lpaths.instance_dir}/impots.json",
        user="root",
        group=platform.apache_group,
        mode="640",
        settings=settings,
        paths=paths,
        site=None,
    )


def _databases(settings: Settings, paths: AppPaths, lpaths: LinuxPaths) -> None:
    secrets = f"{lpaths.instance_dir}/secrets.json"
    database, user = settings.database.name, settings.database.user
    if "mysql" in settings.dbms_in_use:
        mysql_database(
            name="MariaDB database and user",
            helper=lpaths.helper,
            secrets=secrets,
            database=database,
            user=user,
        )
    if "pgres" in settings.dbms_in_use:
        postgresql_database(
            name="PostgreSQL database and role",
            helper=lpaths.helper,
            secrets=secrets,
            database=database,
            user=user,
        )
    for dbms in settings.dbms_in_use:
        database_seeded(name=f"{dbms} schema and data", venv=paths.venv, app=paths.app, dbms=dbms)


@dataclass(frozen=True)
class TlsFiles:
    cert: str
    key: str
    ca: str | None


def _tls(settings: Settings, lpaths: LinuxPaths) -> TlsFiles:
    names = [site.name for site in settings.sites]
    d = lpaths.tls_dir
    if settings.tls.source == "local-ca":
        local_ca_certificate(name="TLS local CA and server certificate", directory=d, names=names)
        ca = lpaths.ca_file
    else:
        files.put(name="TLS certificate", src=settings.tls.cert, dest=f"{d}/server.pem", mode="644")
        private_file(name="TLS private key", src=settings.tls.key, dest=f"{d}/server.key")
        ca = None
        if settings.tls.ca:
            files.put(name="TLS CA certificate", src=settings.tls.ca, dest=lpaths.ca_file, mode="644")
            ca = lpaths.ca_file
    if ca:
        ca_fetched(
            name="CA certificate copied to the controller",
            src=ca,
            dest=str(REPO_ROOT / ".artifacts" / host.name / "impots-ca.pem"),
        )
    return TlsFiles(cert=f"{d}/server.pem", key=f"{d}/server.key", ca=ca)


def _apache(
    settings: Settings, platform: LinuxPlatform, init: str, paths: AppPaths, lpaths: LinuxPaths, tls: TlsFiles
) -> None:
    common = {
        "helper": lpaths.helper,
        "config_root": platform.apache_config_root,
        "snapshot": lpaths.snapshot,
    }
    variables = {"settings": settings, "paths": paths, "platform": platform}

    # mod_wsgi's LoadModule line exists only once it is built: rendered when the operation runs.
    def wsgi_module(*templates: str):
        def content() -> str:
            module_config = host.get_fact(VenvState, venv=paths.venv)["module_config"]
            return "".join(render(t, module_config=module_config, **variables) for t in templates)

        return content

    if platform.uses_a2en:
        apache_file(
            name="mod_wsgi LoadModule",
            path=f"{platform.module_dir}/wsgi_impots.load",
            content=wsgi_module("linux/wsgi.load.j2"),
            **common,
        )
        apache_file(
            name="mod_wsgi settings",
            path=f"{platform.module_dir}/wsgi_impots.conf",
            content=wsgi_module("linux/wsgi.conf.j2"),
            **common,
        )
    else:
        apache_file(
            name="mod_wsgi module",
            path=f"{platform.module_dir}/10-wsgi-impots.conf",
            content=wsgi_module("linux/wsgi.load.j2", "linux/wsgi.conf.j2"),
            **common,
        )
    apache_file(
        name="Listen addresses",
        path=platform.ports_file,
        content=render("linux/ports.conf.j2", **variables),
        **common,
    )
    apache_file(
        name="Deny the install root",
        path=f"{platform.conf_dir}/impots.conf",
        content=render("linux/impots.conf.j2", **variables),
        **common,
    )
    for site in settings.sites:
        apache_file(
            name=f"Vhost {site.name}",
            path=platform.site_file(site.name),
            content=render("linux/vhost.conf.j2", site=site, tls=tls, **variables),
            **common,
        )
    enable = {"helper": lpaths.helper, "snapshot": lpaths.snapshot}
    if platform.uses_a2en:
        # The first LoadModule wsgi_module wins silently: Debian's own mod_wsgi must stay off.
        apache_enabled(
            name="Debian's own mod_wsgi disabled", kind="mod", item="wsgi", enabled=False, **enable
        )
        for kind, item in (("mod", "ssl"), ("mod", "wsgi_impots"), ("conf", "impots")):
            apache_enabled(name=f"Apache {kind} {item} enabled", kind=kind, item=item, **enable)
        for site in settings.sites:
            apache_enabled(name=f"Site {site.name} enabled", kind="site", item=site.name, **enable)
    else:
        for path, pattern in (
            ("/etc/httpd/conf/httpd.conf", "^Listen 80$"),
            ("/etc/httpd/conf.d/ssl.conf", "^Listen 443 https$"),
        ):
            line_commented_out(
                name=f"Default Listen of {path}",
                path=path,
                pattern=pattern,
                reason=f"impots: see {platform.ports_file}",
            )


def _apply(
    settings: Settings, platform: LinuxPlatform, init: str, paths: AppPaths, lpaths: LinuxPaths, tls: TlsFiles
) -> None:
    address = "127.0.0.1" if settings.listen_address == "*" else settings.listen_address
    checks = [
        {
            "name": site.name,
            "url": smoke_url(settings, site),
            "expect": SMOKE_EXPECT[site.kind],
            "error_log": f"{platform.apache_log_dir}/{site.name}-error.log",
            "cacert": tls.ca,
        }
        for site in settings.sites
    ]
    instance = lpaths.instance_dir
    apache_applied(
        name=f"Apache {platform.apache_service}: configtest, (re)load, smoke check",
        platform=platform.family,
        init=init,
        helper=lpaths.helper,
        snapshot=lpaths.snapshot,
        stamp=lpaths.stamp,
        # Everything the running sites depend on: a change to any of them needs a graceful reload.
        watched=[
            platform.apache_config_root,
            paths.app,
            f"{paths.venv}/.impots-requirements.sha256",
            f"{instance}/impots.json",
            f"{instance}/secrets.json",
            tls.cert,
            tls.key,
        ],
        smoke_checks=checks,
        address=address,
    )
