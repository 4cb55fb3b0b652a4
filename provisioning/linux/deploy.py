"""``deploy_linux``: the whole stack on a Debian/Ubuntu or RHEL-family host (Contract 5)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pyinfra import host
from pyinfra.api import deploy

from provisioning.artifact import APP_SOURCE, REPO_ROOT, build_app_artifact
from provisioning.linux.facts import TargetPlatform, VenvState, cached_fact
from provisioning.linux.operations.apache import (
    apache_applied,
    apache_enabled,
    snapshot_command,
    stale_vhosts_removed,
)
from provisioning.linux.operations.app import (
    MaskedSecrets,
    app_release,
    app_venv,
    mod_wsgi_installed,
    private_file,
    secrets_file,
)
from provisioning.linux.operations.content import files_present, folders_present
from provisioning.linux.operations.databases import database_seeded, mysql_database, postgresql_database
from provisioning.linux.operations.hosts import hosts_block
from provisioning.linux.operations.selinux import selinux_configured
from provisioning.linux.operations.system import (
    line_commented_out,
    packages_installed,
    postgresql_initialized,
    services_running,
)
from provisioning.linux.operations.tls import ca_fetched, local_ca_certificate
from provisioning.linux.platforms import LinuxPlatform, NotRootError, choose_platform
from provisioning.remote_call import HELPER_NAME, build_helper
from provisioning.settings import AppPaths, Settings, SettingsError, Site, app_paths

TEMPLATES = REPO_ROOT / "templates"
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

    @property
    def secrets_file(self) -> str:
        return f"{self.instance_dir}/secrets.json"


def linux_paths(paths: AppPaths) -> LinuxPaths:
    state_dir = "/var/lib/impots-provisioning"
    return LinuxPaths(
        instance_dir=f"{paths.install_root}/instance",
        helper=f"{paths.install_root}/bin/{HELPER_NAME}",
        state_dir=state_dir,
        snapshot=f"{state_dir}/apache-config-before.tar",
        stamp=f"{state_dir}/apache-applied.stamp",
        tls_dir=f"{paths.install_root}/tls",
    )


@dataclass(frozen=True)
class TlsFiles:
    cert: str
    key: str
    ca: str | None  # None: a certificate from a CA the clients already trust


def render(template: str, **variables) -> str:
    """Render one of our templates to text (StrictUndefined: a typo fails the plan, not Apache)."""
    environment = Environment(
        loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined, keep_trailing_newline=True
    )
    return environment.get_template(template).render(**variables)


def smoke_url(settings: Settings, site: Site) -> str:
    base = "" if site.alias == "/" else site.alias
    if site.kind == "impots":
        return f"https://{site.name}{base}{settings.prefix_url}/"
    return f"https://{site.name}{base}/"


@deploy("impots: Linux host")
def deploy_linux(settings: Settings) -> None:
    """Provision Apache + mod_wsgi, MariaDB, PostgreSQL, Redis and the impots app on a Linux host."""
    target = host.get_fact(TargetPlatform, bind_address=settings.listen_address)
    if target["uid"] not in (None, 0):
        # Without root every step would fail half-way, and --dry would plan changes from unreadable files.
        raise NotRootError(
            f"operations would run as uid {target['uid']}, but the deploy needs root: "
            "run it as root, connect with ssh_user='root', or set _sudo=True in the host's data"
        )
    platform = choose_platform(target)
    init = target["init"]
    if target["bind_error"]:
        # Apache's configtest does not bind: an address foreign to the target would only fail the reload.
        problem = f"{settings.listen_address} cannot be used on this host ({target['bind_error']})"
        raise SettingsError(f"{host.name}: impots_listen_address: {problem}")
    paths = app_paths(settings)
    lpaths = linux_paths(paths)

    packages_installed(name="Packages (Apache, build tools, databases)", platform=platform.family)
    postgresql_initialized(name="PostgreSQL cluster", platform=platform.family)
    services_running(
        name="Database services running",
        platform=platform.family,
        init=init,
        services=list(platform.database_services),
    )
    _folders(platform, paths, lpaths)
    _app(settings, platform, paths, lpaths)
    _selinux(platform, target["selinux"], paths, lpaths)
    _databases(settings, paths, lpaths)
    tls = _tls(settings, lpaths)
    _apache(settings, platform, paths, lpaths, tls)
    hosts_block(
        name="Hosts file block", address=settings.hosts_address, names=[site.name for site in settings.sites]
    )
    _apply(settings, platform, init, paths, lpaths, tls)


def _folders(platform: LinuxPlatform, paths: AppPaths, lpaths: LinuxPaths) -> None:
    def folder(path: str, mode: str, user: str = "root", group: str = "root") -> dict:
        return {"path": path, "user": user, "group": group, "mode": mode}

    folders_present(
        name="Folders (app, instance, logs, TLS, state)",
        folders=[
            folder(paths.install_root, "755"),
            folder(f"{paths.install_root}/bin", "700"),
            folder(paths.releases, "755"),
            folder(paths.document_root, "755"),
            folder(lpaths.instance_dir, "750", group=platform.apache_group),
            folder(
                f"{lpaths.instance_dir}/logs", "750", user=platform.apache_user, group=platform.apache_group
            ),
            folder(lpaths.tls_dir, "700"),
            folder(lpaths.state_dir, "700"),
        ],
    )


def _app(settings: Settings, platform: LinuxPlatform, paths: AppPaths, lpaths: LinuxPaths) -> None:
    files_present(
        name="Target helper and app configuration (impots.json)",
        files=[
            {
                "path": lpaths.helper,
                "src": str(build_helper()),
                "user": "root",
                "group": "root",
                "mode": "700",
            },
            {
                "path": f"{lpaths.instance_dir}/impots.json",
                "content": render("common/impots.json.j2", settings=settings, paths=paths, site=None),
                "user": "root",
                "group": platform.apache_group,
                "mode": "640",
            },
        ],
    )
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
        path=lpaths.secrets_file,
        group=platform.apache_group,
        given=MaskedSecrets(given),
        generate=[key for key in generate if key not in given],
        upload_dir=lpaths.state_dir,
    )

    artifact = build_app_artifact()
    app_release(
        name="App release", artifact=artifact.path, sha256=artifact.sha256, install_root=paths.install_root
    )
    app_venv(
        name="App virtual environment",
        venv=paths.venv,
        python=platform.system_python,
        requirements=f"{paths.app}/requirements.txt",
        requirements_sha256=hashlib.sha256((APP_SOURCE / "requirements.txt").read_bytes()).hexdigest(),
    )
    mod_wsgi_installed(
        name=f"mod_wsgi {MOD_WSGI_VERSION}", venv=paths.venv, apxs=platform.apxs, version=MOD_WSGI_VERSION
    )


def _selinux(platform: LinuxPlatform, mode: str, paths: AppPaths, lpaths: LinuxPaths) -> None:
    # After the release and the venv exist (restorecon labels what is there), before Apache reloads.
    root = paths.install_root
    selinux_configured(
        name="SELinux booleans and file contexts",
        platform=platform.family,
        mode=mode,
        # _db: MariaDB and PostgreSQL over TCP; the general one: Redis (6379) and the SMTP server.
        booleans=["httpd_can_network_connect_db", "httpd_can_network_connect"],
        contexts=[
            [f"{root}(/.*)?", "httpd_sys_content_t"],
            [f"{lpaths.instance_dir}/logs(/.*)?", "httpd_sys_rw_content_t"],
            [f"{paths.venv}/.+\\.so(\\.[^/]+)?", "lib_t"],
        ],
        relabel=[root],
    )


def _databases(settings: Settings, paths: AppPaths, lpaths: LinuxPaths) -> None:
    # The three operations share one state query (one round trip when nothing changes).
    query = {
        "helper": lpaths.helper,
        "secrets": lpaths.secrets_file,
        "database": settings.database.name,
        "user": settings.database.user,
        "dbms": list(settings.dbms_in_use),
        "venv": paths.venv,
        "app": paths.app,
    }
    if "mysql" in settings.dbms_in_use:
        mysql_database(name="MariaDB database and user", **query)
    if "pgres" in settings.dbms_in_use:
        postgresql_database(name="PostgreSQL database and role", **query)
    if settings.dbms_in_use:
        database_seeded(name="Schema and data (impots.db.seed)", **query)


def _tls(settings: Settings, lpaths: LinuxPaths) -> TlsFiles:
    directory = lpaths.tls_dir
    cert, key = f"{directory}/server.pem", f"{directory}/server.key"
    if settings.tls.source == "files":
        certificates = [
            {"path": cert, "src": settings.tls.cert, "user": "root", "group": "root", "mode": "644"}
        ]
        if settings.tls.ca:
            certificates.append(
                {
                    "path": lpaths.ca_file,
                    "src": settings.tls.ca,
                    "user": "root",
                    "group": "root",
                    "mode": "644",
                }
            )
        files_present(name="TLS certificates (given files)", files=certificates)
        private_file(name="TLS private key (given file)", src=settings.tls.key, dest=key)
        return TlsFiles(cert=cert, key=key, ca=lpaths.ca_file if settings.tls.ca else None)

    local_ca_certificate(
        name="TLS local CA and server certificate",
        directory=directory,
        names=[s.name for s in settings.sites],
    )
    ca_fetched(
        name="CA certificate copied to the controller",
        directory=directory,
        dest=str(REPO_ROOT / ".artifacts" / host.name / "impots-ca.pem"),
    )
    return TlsFiles(cert=cert, key=key, ca=lpaths.ca_file)


def _apache(
    settings: Settings, platform: LinuxPlatform, paths: AppPaths, lpaths: LinuxPaths, tls: TlsFiles
) -> None:
    variables = {"settings": settings, "paths": paths, "platform": platform}

    # mod_wsgi's LoadModule line exists only once it is built: rendered when the operation runs.
    def wsgi_module(*templates: str):
        def content() -> str:
            module_config = cached_fact(VenvState, venv=paths.venv)["module_config"]
            return "".join(render(t, module_config=module_config, **variables) for t in templates)

        return content

    def config_file(path: str, content) -> dict:
        return {"path": path, "content": content, "user": "root", "group": "root", "mode": "644"}

    if platform.uses_a2en:
        module_files = [
            config_file(f"{platform.module_dir}/wsgi_impots.load", wsgi_module("linux/wsgi.load.j2")),
            config_file(f"{platform.module_dir}/wsgi_impots.conf", wsgi_module("linux/wsgi.conf.j2")),
        ]
    else:
        module_files = [
            config_file(
                f"{platform.module_dir}/10-wsgi-impots.conf",
                wsgi_module("linux/wsgi.load.j2", "linux/wsgi.conf.j2"),
            )
        ]
    files_present(
        name="Apache configuration (mod_wsgi, Listen, deny rules, vhosts)",
        files=[
            *module_files,
            config_file(platform.ports_file, render("linux/ports.conf.j2", **variables)),
            config_file(f"{platform.conf_dir}/impots.conf", render("linux/impots.conf.j2", **variables)),
            *(
                config_file(
                    platform.site_file(site.name),
                    render("linux/vhost.conf.j2", site=site, tls=tls, **variables),
                )
                for site in settings.sites
            ),
        ],
        before=snapshot_command(lpaths.helper, platform.apache_config_root, lpaths.snapshot),
    )
    stale_vhosts_removed(
        name="Vhosts of removed sites",
        platform=platform.family,
        keep=[site.name for site in settings.sites],
        helper=lpaths.helper,
        snapshot=lpaths.snapshot,
    )
    if platform.uses_a2en:
        # The first LoadModule wsgi_module wins silently: Debian's own mod_wsgi must stay off.
        items = [
            ["mod", "wsgi", False],
            ["mod", "ssl", True],
            ["mod", "wsgi_impots", True],
            ["conf", "impots", True],
        ]
        items += [["site", site.name, True] for site in settings.sites]
        apache_enabled(
            name="Apache modules, conf and sites enabled",
            items=items,
            helper=lpaths.helper,
            snapshot=lpaths.snapshot,
        )
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
            # Without a CA file the certificate itself is the trust anchor (curl accepts a partial chain).
            "cacert": tls.ca or tls.cert,
        }
        for site in settings.sites
    ]
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
            f"{lpaths.instance_dir}/impots.json",
            lpaths.secrets_file,
            tls.cert,
            tls.key,
        ],
        smoke_checks=checks,
        address=address,
    )
