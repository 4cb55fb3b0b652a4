"""``deploy_windows(settings)``: the impots stack on a Windows lab machine (Laragon or Apache Lounge).

The same Settings and group data as Linux (Contract 3); a Windows host is one more inventory entry,
reached with ``@winssh``. Everything is decided from data and facts first (``resolve_target``), and
every prerequisite is checked then, so a machine that cannot work stops the run with one message naming
what was found, before anything changes. The plan, in order:

1. install root (ACL: Administrators, SYSTEM, the Apache account), releases, instance, logs, www;
2. the venv from the chosen Python, the pinned requirements, mod_wsgi built against this Apache;
3. the app release (artifact) swapped in when its sha changed, the instance folder kept;
4. ``impots.json`` (Contract 1) and the ACL'd ``secrets.json``;
5. the databases (``databases.py``): Laragon's Redis started if it is down, the database and user on
   each DBMS a site uses, then the app's seed (schema and rows);
6. TLS files (Laragon's own certificate by default, else data files or a controller-made local CA);
7. a snapshot of the files Apache reads, before the first of them changes (``apache.py``);
8. one vhost file per site, our marked block in httpd.conf (mod_wsgi loaded once), the hosts block;
9. ``httpd -t``, restart and HTTPS smoke check of every site when Apache is down or anything it
   depends on is newer than the stamp of the last success; a failure puts the snapshot back.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment
from pyinfra import host
from pyinfra.api import deploy

from provisioning import plan
from provisioning.artifact import REPO_ROOT, build_app_artifact
from provisioning.settings import AppPaths, Settings, app_paths, instance_config_json
from provisioning.windows import databases, facts, operations, prerequisites
from provisioning.windows.apache import apache_applied, apache_config_snapshot
from provisioning.windows.databases import (
    DatabaseDataError,
    DatabaseTarget,
    database_admins,
    resolve_databases,
)
from provisioning.windows.operations import ADMINISTRATORS_SID, MARKER, SYSTEM_SID, sha256_hex, stamp_path
from provisioning.windows.platforms import (
    APACHE_LOUNGE,
    HOSTS_FILE,
    PlatformError,
    WindowsPlatform,
    apache_lounge_platform,
    laragon_apache_folder,
    laragon_platform,
)
from provisioning.windows.prerequisites import WindowsDeployError, choose_python
from provisioning.windows.tls import controller_certificate, local_ca_file

REQUIREMENTS_FILE = REPO_ROOT / "requirements" / "app.txt"


@dataclass(frozen=True)
class TlsFiles:
    cert: str  # paths on the host
    key: str
    chain: str | None
    uploads: tuple[tuple[str, str], ...]  # (controller file, host file)


@dataclass(frozen=True)
class WindowsTarget:
    """Everything the plan needs, decided from settings and facts before any operation."""

    platform: WindowsPlatform
    apache: dict[str, Any]
    python: dict[str, Any]
    service: str | None  # Windows service running Apache, None = a plain process (Laragon)
    reader_sids: tuple[str, ...]  # the accounts Apache runs as (read the app, its secrets; write the logs)
    paths: AppPaths
    instance_store: str  # the persistent instance folder; <app>/instance is a junction to it
    tls: TlsFiles
    httpd_conf: str  # current text of httpd.conf
    databases: DatabaseTarget = field(default_factory=DatabaseTarget)
    desktop_user: str | None = None  # Laragon: "PC\\user" whose tray runs Apache (restarts run as them)

    @property
    def site_packages(self) -> str:
        return f"{self.paths.venv}/Lib/site-packages"

    @property
    def mod_wsgi_module(self) -> str:
        major, minor = self.python["version"].split(".")[:2]
        platform_tag = "win_amd64" if self.python["bits"] == 64 else "win32"
        return f"{self.site_packages}/mod_wsgi/server/mod_wsgi.cp{major}{minor}-{platform_tag}.pyd"

    @property
    def python_dll(self) -> str:
        major, minor = self.python["version"].split(".")[:2]
        return f"{self.python['base_prefix']}/python{major}{minor}.dll"


# --- deciding from facts -------------------------------------------------------------------------------


def resolve_platform(settings: Settings) -> WindowsPlatform:
    if settings.windows_layout == APACHE_LOUNGE:
        return apache_lounge_platform(settings.apache_root)
    apache_root = settings.apache_root
    if apache_root is None:
        laragon = host.get_fact(facts.LaragonApache, laragon_root=settings.laragon_root)
        folder = laragon_apache_folder(
            settings.laragon_root, laragon["versions"], laragon["selected"], laragon["running"]
        )
        apache_root = f"{settings.laragon_root.rstrip('/')}/bin/apache/{folder}"
    return laragon_platform(settings.laragon_root, apache_root)


_ACTIVE_SSL = re.compile(
    r"^[ \t]*(Listen[ \t]+(\S+:)?443\b|Include(Optional)?[ \t]+\"?[^\"\r\n]*ssl[^\"\r\n]*\.conf)",
    re.IGNORECASE | re.MULTILINE,
)
_ACTIVE_WSGI = re.compile(r"^[ \t]*LoadModule[ \t]+wsgi_module\b.*$", re.IGNORECASE | re.MULTILINE)


def ssl_listen(httpd_conf: str, listen_address: str) -> str | None:
    """``Listen`` value for 443 our block must add, or None when httpd.conf already listens on 443
    (a ``Listen 443`` line or an included ``*ssl*.conf``, e.g. Laragon with SSL on)."""
    if _ACTIVE_SSL.search(operations.without_marked_block(httpd_conf)):
        return None
    if listen_address == "*":
        return "443"
    return f"[{listen_address}]:443" if ":" in listen_address else f"{listen_address}:443"


def resolve_tls(settings: Settings, platform: WindowsPlatform, tls_dir: str) -> TlsFiles:
    if settings.tls.source == "files":
        uploads = [(settings.tls.cert, f"{tls_dir}/server.pem"), (settings.tls.key, f"{tls_dir}/server.key")]
        chain = None
        if settings.tls.ca:
            chain = f"{tls_dir}/ca.pem"
            uploads.append((settings.tls.ca, chain))
        return TlsFiles(f"{tls_dir}/server.pem", f"{tls_dir}/server.key", chain, tuple(uploads))
    if platform.default_cert and platform.default_key:
        return TlsFiles(platform.default_cert, platform.default_key, None, ())
    made = controller_certificate(host.name, [site.name for site in settings.sites])
    return TlsFiles(
        f"{tls_dir}/server.pem",
        f"{tls_dir}/server.key",
        None,
        ((made.cert, f"{tls_dir}/server.pem"), (made.key, f"{tls_dir}/server.key")),
    )


def _laragon_user(platform: WindowsPlatform) -> dict | None:
    if platform.layout == APACHE_LOUNGE:
        return None
    return prerequisites.laragon_desktop_user(host.get_fact(facts.ProcessOwners, program="laragon.exe"))


def _host_problems(
    settings: Settings, platform: WindowsPlatform, apache: dict | None
) -> tuple[dict | None, list[str]]:
    """The chosen Python and every prerequisite problem of the host itself (prerequisites.py)."""
    found = host.get_fact(facts.PythonInstallations, path=settings.windows_python)
    python, python_problem = choose_python(settings, found)
    problems = prerequisites.apache_problems(platform.apache_root, platform.httpd, apache)
    problems += (
        [python_problem]
        if python is None
        else prerequisites.python_apache_problems(python, apache, platform.apache_root)
    )
    problems += prerequisites.build_tools_problems(host.get_fact(facts.MsvcBuildTools))
    problems += prerequisites.session_problems(host.get_fact(facts.CurrentUser))
    problems += prerequisites.tar_problems(host.get_fact(facts.SystemProgram, program="tar.exe"))
    try:
        prerequisites.mod_wsgi_package(settings)
    except WindowsDeployError as error:
        problems.append(str(error))
    return python, problems


def resolve_target(settings: Settings, admins: databases.DatabaseAdmins | None = None) -> WindowsTarget:
    """Read the facts, choose platform, Python and Apache accounts; raise WindowsDeployError if unusable."""
    try:
        platform = resolve_platform(settings)
    except PlatformError as error:
        raise WindowsDeployError(f"{host.name}: {error}") from None
    apache = host.get_fact(facts.ApacheInstallation, root=platform.apache_root)
    python, problems = _host_problems(settings, platform, apache)
    desktop = _laragon_user(platform)
    if platform.layout != APACHE_LOUNGE:
        problems += prerequisites.laragon_problems(settings.laragon_root, desktop)
    accounts = list(settings.windows_apache_accounts)
    account_sids = host.get_fact(facts.AccountSids, accounts=accounts) if accounts else {}
    problems += prerequisites.account_problems(accounts, account_sids)
    httpd_conf = host.get_fact(facts.FileText, path=platform.httpd_conf)
    if apache is not None and httpd_conf is None:
        problems.append(f"no {platform.httpd_conf}")
    stray = _ACTIVE_WSGI.search(operations.without_marked_block(httpd_conf or ""))
    if stray:
        problems.append(
            f"{platform.httpd_conf} already loads mod_wsgi outside the impots block "
            f"({stray.group(0).strip()!r}): remove that line, the deploy loads it once in its own block"
        )
    database_target, database_problems = resolve_databases(settings, platform, admins)
    runtime = host.get_fact(facts.HttpdRuntime, httpd=platform.httpd)
    service = runtime["services"][0] if runtime["services"] else None
    prerequisites.raise_problems(
        host.name, problems + database_problems + prerequisites.service_problems(service)
    )
    paths = app_paths(settings)
    return WindowsTarget(
        platform=platform,
        apache=apache,
        python=python,
        service=service["name"] if service else None,
        reader_sids=prerequisites.apache_reader_sids(
            service, runtime["processes"], desktop, account_sids.values()
        ),
        paths=paths,
        instance_store=f"{paths.install_root}/instance",
        tls=resolve_tls(settings, platform, f"{paths.install_root}/tls"),
        httpd_conf=httpd_conf,
        databases=database_target,
        desktop_user=desktop["owner"] if desktop else None,
    )


# --- rendering -----------------------------------------------------------------------------------------


def _templates() -> Environment:
    return plan.TEMPLATES


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def render_vhost(target: WindowsTarget, settings: Settings, site: Any) -> bytes:
    text = plan.render(
        "vhost.conf.j2",
        site=site,
        settings=settings,
        paths=target.paths,
        platform=target.platform,
        tls=target.tls,
    )
    return crlf(text).encode("utf-8")


def httpd_block_lines(target: WindowsTarget, settings: Settings) -> list[str]:
    includes = (
        [target.platform.vhost_file(site.name) for site in settings.sites]
        if target.platform.include_vhosts
        else []
    )
    text = (
        _templates()
        .get_template("windows/httpd-block.conf.j2")
        .render(
            module=target.mod_wsgi_module,
            python={"home": target.python["base_prefix"], "dll": target.python_dll},
            site_packages=target.site_packages,
            ssl=ssl_listen(target.httpd_conf, settings.listen_address),
            includes=includes,
        )
    )
    return text.strip("\n").split("\n")


def hosts_block_lines(settings: Settings) -> list[str]:
    return (
        _templates().get_template("windows/hosts-block.j2").render(settings=settings).strip("\n").split("\n")
    )


def render_instance_config(settings: Settings, paths: AppPaths) -> bytes:
    return instance_config_json(settings, paths).encode("utf-8")


def secrets_wanted(settings: Settings) -> tuple[dict[str, str | None], list[str]]:
    given = {
        "secret_key": settings.secret_key,
        "mysql_password": settings.mysql_password,
        "pgres_password": settings.pgres_password,
        "smtp_password": settings.smtp_password,
    }
    generate = ["secret_key"] + [f"{dbms}_password" for dbms in settings.dbms_in_use]
    return given, generate


# --- the plan ------------------------------------------------------------------------------------------


@deploy("impots on Windows")
def deploy_windows(settings: Settings) -> None:
    """The whole Windows plan for one host (see the module docstring for the order)."""
    data = host.data.dict() if hasattr(host.data, "dict") else dict(host.data)
    try:
        admins = database_admins(host.name, data, os.environ)
    except DatabaseDataError as error:
        raise WindowsDeployError(str(error)) from None
    target = resolve_target(settings, admins)
    provision_folders(target)
    provision_app(settings, target)
    provision_databases(settings, target, admins)
    provision_apache(settings, target)


def provision_folders(target: WindowsTarget) -> None:
    """The install root restricted to Administrators, SYSTEM and Apache; its folders; logs writable."""
    paths = target.paths
    full = [ADMINISTRATORS_SID, SYSTEM_SID]
    operations.directory(name="Install root", path=paths.install_root)
    operations.restricted_acl(
        name="Install root: Administrators, SYSTEM and Apache only",
        path=paths.install_root,
        folder=True,
        full=full,
        read=list(target.reader_sids),
    )
    for folder in (
        paths.releases,
        target.instance_store,
        f"{target.instance_store}/logs",
        paths.document_root,
    ):
        operations.directory(name=f"Folder {folder}", path=folder)
    operations.restricted_acl(
        name="Logs writable by Apache",
        path=f"{target.instance_store}/logs",
        folder=True,
        full=full,
        modify=list(target.reader_sids),
    )


def provision_app(settings: Settings, target: WindowsTarget) -> None:
    """The venv, its requirements and mod_wsgi, the app release, impots.json and the secrets file."""
    artifact = build_app_artifact()
    paths, platform = target.paths, target.platform
    operations.venv(name="Virtual environment", python=target.python["executable"], path=paths.venv)
    operations.pip_requirements(
        name="App requirements", venv_path=paths.venv, requirements=REQUIREMENTS_FILE.read_bytes()
    )
    operations.mod_wsgi(
        name="mod_wsgi built for this Apache",
        venv_path=paths.venv,
        apache_root=platform.apache_root,
        package=prerequisites.mod_wsgi_package(settings),
    )
    operations.app_release(
        name=f"App release {artifact.release}",
        artifact_path=artifact.path,
        sha256=artifact.sha256,
        app=paths.app,
        releases=paths.releases,
        instance=target.instance_store,
    )
    operations.put_bytes(
        name="Instance configuration impots.json",
        dest=f"{target.instance_store}/impots.json",
        content=render_instance_config(settings, paths),
    )
    given, generate = secrets_wanted(settings)
    operations.secrets_file(
        name="Secrets file (ACL)",
        path=f"{target.instance_store}/secrets.json",
        given=given,
        generate=generate,
        reader_sid=target.reader_sids,
    )


@dataclass(frozen=True)
class ApacheFiles:
    """What this run writes for Apache, rendered once for the snapshot and for the writes."""

    vhosts: dict[str, bytes]  # host path -> content
    httpd_block: list[str]
    httpd_conf: str  # httpd.conf as it will be

    def digests(self, target: WindowsTarget) -> dict[str, str | None]:
        """``{path: SHA256 it will have}`` of every file Apache reads that the deploy writes (None:
        httpd.conf already holds our block, whatever its bytes, e.g. a BOM)."""
        files: dict[str, str | None] = {}
        for src, dest in target.tls.uploads:
            with open(src, "rb") as local:
                files[dest] = sha256_hex(local.read())
        files.update((path, sha256_hex(content)) for path, content in self.vhosts.items())
        unchanged = self.httpd_conf == target.httpd_conf
        files[target.platform.httpd_conf] = None if unchanged else sha256_hex(self.httpd_conf.encode())
        return files


def apache_files(settings: Settings, target: WindowsTarget) -> ApacheFiles:
    block = httpd_block_lines(target, settings)
    return ApacheFiles(
        vhosts={
            target.platform.vhost_file(site.name): render_vhost(target, settings, site)
            for site in settings.sites
        },
        httpd_block=block,
        httpd_conf=operations.replace_marked_block(target.httpd_conf, MARKER, block),
    )


def provision_apache(settings: Settings, target: WindowsTarget) -> None:
    """Snapshot, TLS files, vhosts, httpd.conf block and hosts block, then the applied transaction."""
    paths, platform = target.paths, target.platform
    files = apache_files(settings, target)
    state_dir = platform.state_dir(paths.install_root)
    snapshot = f"{state_dir}/apache-snapshot"
    apache_config_snapshot(
        name="Apache configuration snapshot", files=files.digests(target), snapshot=snapshot
    )
    if target.tls.uploads:
        operations.directory(name="TLS folder", path=f"{paths.install_root}/tls")
        for src, dest in target.tls.uploads:
            operations.put_local_file(name=f"TLS file {dest}", src=src, dest=dest)
    if settings.tls.source != "files" and settings.windows_trust_ca:
        operations.trusted_root_ca(
            name="Local CA trusted by Windows (LocalMachine Root)",
            ca_pem=local_ca_file(host.name),
            dest=f"{paths.install_root}/tls/impots-ca.pem",
        )
    for site in settings.sites:
        dest = platform.vhost_file(site.name)
        operations.put_bytes(name=f"Vhost {site.name}", dest=dest, content=files.vhosts[dest])
    operations.marked_block(
        name="httpd.conf: mod_wsgi block", path=platform.httpd_conf, lines=files.httpd_block
    )
    operations.marked_block(name="Hosts file block", path=HOSTS_FILE, lines=hosts_block_lines(settings))

    tls = target.tls
    watched = [
        *files.digests(target),
        *(path for path in (tls.cert, tls.key, tls.chain) if path),  # Laragon may renew its own
        paths.app,  # a junction, re-made for each release
        f"{paths.venv}/pyvenv.cfg",
        stamp_path(paths.venv, "requirements"),
        stamp_path(paths.venv, "mod_wsgi"),
        f"{target.instance_store}/impots.json",
        f"{target.instance_store}/secrets.json",
    ]
    checks = [
        {
            "name": site.name,
            "url": plan.smoke_url(settings, site),
            "expect": plan.SMOKE_EXPECT[site.kind],
            "error_log": f"{platform.apache_log_dir}/{site.name}-error.log",  # as the vhost names it
        }
        for site in settings.sites
    ]
    apache_applied(
        name="Apache: configuration test, restart, smoke check",
        httpd=platform.httpd,
        service=target.service,
        stamp=f"{state_dir}/apache-applied.stamp",
        snapshot=snapshot,
        watched=list(dict.fromkeys(watched)),
        smoke_checks=checks,
        address="127.0.0.1" if settings.listen_address == "*" else settings.listen_address,
        error_log=platform.error_log,
        # The certificate the deploy made or was given must name every site; Laragon's own may not.
        tls_anchor=tls.chain or tls.cert,
        check_name=bool(tls.uploads),
    )


def provision_databases(settings: Settings, target: WindowsTarget, admins: databases.DatabaseAdmins) -> None:
    """Redis, then the database and user of each DBMS in use, then the seed (after the venv, the app
    and its instance files: the check and the seed are the app's own command)."""
    paths = target.paths
    if databases.needs_redis(settings) and target.databases.redis_server:
        databases.redis_running(name="Redis running (Laragon)", server=target.databases.redis_server)
    if not settings.dbms_in_use:
        return
    admin_dir = f"{paths.install_root}/admin"
    if any(admins.password(dbms) is not None for dbms in settings.dbms_in_use):
        operations.directory(name="Folder for database administrator passwords", path=admin_dir)
        operations.restricted_acl(
            name="Database administrator folder: Administrators and SYSTEM only",
            path=admin_dir,
            folder=True,
            full=[ADMINISTRATORS_SID, SYSTEM_SID],
        )
    check = databases.seed_check_paths(settings)
    accounts = {
        "mysql": (databases.mysql_account, "MariaDB/MySQL database and user"),
        "pgres": (databases.postgresql_account, "PostgreSQL database and role"),
    }
    for dbms in settings.dbms_in_use:
        account, name = accounts[dbms]
        account(
            name=name,
            client=target.databases.clients[dbms],
            admin_user=admins.user(dbms),
            admin_password=admins.password(dbms),
            admin_dir=admin_dir,
            secrets=f"{target.instance_store}/secrets.json",
            database=settings.database.name,
            user=settings.database.user,
            **check,
        )
    databases.database_seeded(
        name="Schema and data (impots.db.seed)", dbms=list(settings.dbms_in_use), **check
    )
