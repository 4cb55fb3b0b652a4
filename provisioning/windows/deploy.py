"""``deploy_windows(settings)``: apply a host's plan (``provisioning.plan``) on a Windows lab machine
(Laragon or Apache Lounge), reached with ``@winssh``.

What the host gets (folders, impots.json, secrets, requirements, vhosts, TLS material, smoke checks, what
needs a reload) is decided once in the plan, for Linux and Windows alike. This module decides only what
is Windows' own, from data and facts first (``resolve_target``): the layout, the Python, the accounts
Apache runs as, the database clients; every prerequisite is checked then, so a machine that cannot work
stops the run with one message naming what was found, before anything changes. Then, in order:

0. the host's deploy lock taken (``lock.py``; dropped after step 8, or when an operation fails);

1. the plan's folders (ACLs: the install root restricted, the logs writable by Apache);
2. the venv from the chosen Python, the plan's requirements, mod_wsgi built against this Apache;
3. the app release (artifact) swapped in when its sha changed, the instance folder kept;
4. ``impots.json`` and the ACL'd ``secrets.json``;
5. Redis (``redis.py``): Laragon's given the app's password, loopback and a memory limit in a file of
   ours, restarted when that changed (a Redis the deploy does not manage was checked with the password
   the user gave, before any change); then the database and user on each DBMS a site uses, then the
   app's seed (which touches the plan's data stamp);
6. a snapshot of the files Apache reads, before the first of them changes (``apache.py``);
7. the plan's TLS files (the controller's local CA by default, on both layouts), the CA trusted by
   Windows, one vhost file per site, our marked block in httpd.conf (mod_wsgi loaded once), the hosts
   block;
8. ``httpd -t``, restart and HTTPS smoke check of every site when Apache is down or anything it
   depends on is newer than the stamp of the last success; a failure puts the snapshot back.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Any

from pyinfra import host
from pyinfra.api import deploy

from provisioning.artifact import build_app_artifact
from provisioning.plan import Access, HostPlan, MaskedSecrets, host_plan, render
from provisioning.settings import AppPaths, Settings, app_paths
from provisioning.windows import databases, facts, operations, prerequisites, redis
from provisioning.windows.apache import apache_applied, apache_config_snapshot
from provisioning.windows.databases import (
    DatabaseDataError,
    DatabaseTarget,
    database_admins,
    resolve_databases,
)
from provisioning.windows.lock import (
    lock_path,
    root_grants,
    win_deploy_lock_released,
    win_deploy_lock_taken,
)
from provisioning.windows.operations import ADMINISTRATORS_SID, MARKER, SYSTEM_SID, sha256_hex
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


@dataclass(frozen=True)
class WindowsTarget:
    """What only Windows decides, from settings and facts before any operation."""

    platform: WindowsPlatform
    apache: dict[str, Any]
    python: dict[str, Any]
    service: str | None  # Windows service running Apache, None = a plain process (Laragon)
    reader_sids: tuple[str, ...]  # the accounts Apache runs as (read the app, its secrets; write the logs)
    paths: AppPaths
    httpd_conf: str  # current text of httpd.conf
    databases: DatabaseTarget = field(default_factory=DatabaseTarget)
    desktop_user: str | None = None  # Laragon: "PC\\user" whose tray runs Apache (restarts run as them)
    redis: redis.RedisTarget | None = None  # None: no site keeps sessions in Redis

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
    redis_target, redis_problems = redis.resolve_redis(settings, platform, os.environ)
    database_problems += redis_problems
    runtime = host.get_fact(facts.HttpdRuntime, httpd=platform.httpd)
    service = runtime["services"][0] if runtime["services"] else None
    prerequisites.raise_problems(
        host.name, problems + database_problems + prerequisites.service_problems(service)
    )
    return WindowsTarget(
        platform=platform,
        apache=apache,
        python=python,
        service=service["name"] if service else None,
        reader_sids=prerequisites.apache_reader_sids(
            service, runtime["processes"], desktop, account_sids.values()
        ),
        paths=app_paths(settings),
        httpd_conf=httpd_conf,
        databases=database_target,
        desktop_user=desktop["owner"] if desktop else None,
        redis=redis_target,
    )


# --- rendering: what only Windows writes (the vhosts themselves come from the plan) -------------------


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def vhost_bytes(plan: HostPlan) -> dict[str, bytes]:
    """``{vhost file: content}``: the plan's vhosts with Windows line ends."""
    return {site.vhost_file: crlf(site.vhost).encode("utf-8") for site in plan.sites}


def httpd_block_lines(target: WindowsTarget, settings: Settings) -> list[str]:
    includes = (
        [target.platform.vhost_file(site.name) for site in settings.sites]
        if target.platform.include_vhosts
        else []
    )
    text = render(
        "windows/httpd-block.conf.j2",
        module=target.mod_wsgi_module,
        python={"home": target.python["base_prefix"], "dll": target.python_dll},
        site_packages=target.site_packages,
        ssl=ssl_listen(target.httpd_conf, settings.listen_address),
        includes=includes,
    )
    return text.strip("\n").split("\n")


def hosts_block_lines(settings: Settings) -> list[str]:
    return render("windows/hosts-block.j2", settings=settings).strip("\n").split("\n")


# --- applying the plan ---------------------------------------------------------------------------------


@deploy("impots on Windows")
def deploy_windows(settings: Settings) -> None:
    """The whole Windows plan for one host (see the module docstring for the order)."""
    data = host.data.dict() if hasattr(host.data, "dict") else dict(host.data)
    try:
        admins = database_admins(host.name, data, os.environ)
    except DatabaseDataError as error:
        raise WindowsDeployError(str(error)) from None
    target = resolve_target(settings, admins)
    plan = with_given_secrets(
        host_plan(host.name, settings, target.platform, redis_auth=redis.redis_auth(target.redis)),
        redis.given_secrets(target.redis),
    )
    lock = lock_path(plan.paths.state_dir)
    win_deploy_lock_taken(
        name="Deploy lock (one run at a time on this host)",
        lock=lock,
        wait=settings.lock_wait,
        root=plan.paths.install_root,  # made by the lock on a fresh host: with the folder step's ACL
        grants=root_grants([ADMINISTRATORS_SID, SYSTEM_SID], target.reader_sids),
    )
    provision_folders(plan, target)
    provision_app(plan, target)
    provision_databases(plan, target, admins)
    provision_apache(plan, target)
    win_deploy_lock_released(name="Deploy lock released", lock=lock)


def with_given_secrets(plan: HostPlan, given: dict[str, str]) -> HostPlan:
    """The plan with more given secrets (the password of a Redis the deploy does not manage)."""
    if not given:
        return plan
    secrets = dataclasses.replace(plan.secrets, given=MaskedSecrets({**plan.secrets.given, **given}))
    return dataclasses.replace(plan, secrets=secrets)


def provision_folders(plan: HostPlan, target: WindowsTarget) -> None:
    """The plan's folders, mapped to ACLs. The install root gets a protected ACL (Administrators and
    SYSTEM full, the Apache accounts read) and every other folder inherits it: on Windows Apache runs as
    an account of its own or as the desktop user, which must read the app, the instance and the TLS key
    alike, so PUBLIC, APACHE_READ and PRIVATE all come down to that ACL. APACHE_WRITE (the logs) adds
    "modify" for the Apache accounts."""
    full = [ADMINISTRATORS_SID, SYSTEM_SID]
    root = plan.paths.install_root
    for folder in plan.folders:
        operations.directory(
            name="Install root" if folder.path == root else f"Folder {folder.path}", path=folder.path
        )
        if folder.path == root:
            operations.restricted_acl(
                name="Install root: Administrators, SYSTEM and Apache only",
                path=root,
                folder=True,
                full=full,
                read=list(target.reader_sids),
            )
        elif folder.access is Access.APACHE_WRITE:
            operations.restricted_acl(
                name=f"Writable by Apache: {folder.path}",
                path=folder.path,
                folder=True,
                full=full,
                modify=list(target.reader_sids),
            )


def provision_app(plan: HostPlan, target: WindowsTarget) -> None:
    """The venv, its requirements and mod_wsgi, the app release, impots.json and the secrets file."""
    artifact = build_app_artifact()
    paths = plan.paths
    operations.venv(name="Virtual environment", python=target.python["executable"], path=paths.venv)
    operations.pip_requirements(
        name="App requirements", venv_path=paths.venv, requirements=plan.requirements.encode("utf-8")
    )
    operations.mod_wsgi(
        name="mod_wsgi built for this Apache",
        venv_path=paths.venv,
        apache_root=target.platform.apache_root,
        package=prerequisites.mod_wsgi_package(plan.settings),
    )
    operations.app_release(
        name=f"App release {artifact.release}",
        artifact_path=artifact.path,
        sha256=artifact.sha256,
        app=paths.app,
        releases=paths.releases,
        instance=paths.instance_dir,
    )
    operations.put_bytes(
        name="Instance configuration impots.json",
        dest=paths.instance_config,
        content=plan.instance_config.encode("utf-8"),
    )
    operations.secrets_file(
        name="Secrets file (ACL)",
        path=plan.secrets.path,
        given=plan.secrets.given,
        generate=list(plan.secrets.generate),
        reader_sid=target.reader_sids,
    )


@dataclass(frozen=True)
class ApacheFiles:
    """What this run writes for Apache, rendered once for the snapshot and for the writes."""

    vhosts: dict[str, bytes]  # host path -> content
    httpd_block: list[str]
    httpd_conf: str  # httpd.conf as it will be

    def digests(self, plan: HostPlan, target: WindowsTarget) -> dict[str, str | None]:
        """``{path: SHA256 it will have}`` of every file Apache reads that the deploy writes (None:
        httpd.conf already holds our block, whatever its bytes, e.g. a BOM)."""
        files: dict[str, str | None] = {}
        for src, dest, _access in plan.tls.uploads:
            with open(src, "rb") as local:
                files[dest] = sha256_hex(local.read())
        files.update((path, sha256_hex(content)) for path, content in self.vhosts.items())
        unchanged = self.httpd_conf == target.httpd_conf
        files[target.platform.httpd_conf] = None if unchanged else sha256_hex(self.httpd_conf.encode())
        return files


def apache_files(plan: HostPlan, target: WindowsTarget) -> ApacheFiles:
    block = httpd_block_lines(target, plan.settings)
    return ApacheFiles(
        vhosts=vhost_bytes(plan),
        httpd_block=block,
        httpd_conf=operations.replace_marked_block(target.httpd_conf, MARKER, block),
    )


def provision_apache(plan: HostPlan, target: WindowsTarget) -> None:
    """Snapshot, TLS files, vhosts, httpd.conf block and hosts block, then the applied transaction."""
    settings, paths, platform = plan.settings, plan.paths, target.platform
    files = apache_files(plan, target)
    digests = files.digests(plan, target)
    snapshot = f"{paths.state_dir}/apache-snapshot"
    apache_config_snapshot(name="Apache configuration snapshot", files=digests, snapshot=snapshot)
    for src, dest, _access in plan.tls.uploads:  # ACL: the TLS folder's, inherited (provision_folders)
        operations.put_local_file(name=f"TLS file {dest}", src=src, dest=dest)
    if settings.tls.source != "files" and settings.windows_trust_ca and plan.tls.client_ca:
        operations.trusted_root_ca(
            name="Local CA trusted by Windows (LocalMachine Root)",
            ca_pem=plan.tls.client_ca,
            dest=f"{paths.tls_dir}/impots-ca.pem",
        )
    for site in plan.sites:
        dest = site.vhost_file
        operations.put_bytes(name=f"Vhost {site.site.name}", dest=dest, content=files.vhosts[dest])
    operations.marked_block(
        name="httpd.conf: mod_wsgi block", path=platform.httpd_conf, lines=files.httpd_block
    )
    operations.marked_block(name="Hosts file block", path=HOSTS_FILE, lines=hosts_block_lines(settings))
    checks = [
        {"name": site.site.name, "url": site.smoke_url, "expect": site.expect, "error_log": site.error_log}
        for site in plan.sites
    ]
    apache_applied(
        name="Apache: configuration test, restart, smoke check",
        httpd=platform.httpd,
        service=target.service,
        stamp=paths.stamp,
        snapshot=snapshot,
        # What the plan says Apache depends on, plus the Apache files written here (Linux watches its
        # whole configuration root instead; Windows' Apache tree also holds logs that change all the time).
        watched=list(dict.fromkeys([*digests, *plan.reload_watch])),
        smoke_checks=checks,
        address="127.0.0.1" if settings.listen_address == "*" else settings.listen_address,
        error_log=platform.error_log,
        # The certificate is always the plan's (made or given): it must name every site.
        tls_anchor=plan.tls.trust_anchor,
        check_name=True,
        desktop_user=target.desktop_user,  # Laragon: httpd runs as the user whose tray runs it
    )


def provision_databases(plan: HostPlan, target: WindowsTarget, admins: databases.DatabaseAdmins) -> None:
    """Redis, then the database and user of each DBMS in use, then the seed (after the venv, the app
    and its instance files: the check and the seed are the app's own command)."""
    settings = plan.settings
    redis.provision_redis(plan, target.redis)
    if not plan.databases.dbms:
        return
    admin_dir = f"{plan.paths.install_root}/admin"
    if any(admins.password(dbms) is not None for dbms in plan.databases.dbms):
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
    for dbms in plan.databases.dbms:
        account, name = accounts[dbms]
        account(
            name=name,
            client=target.databases.clients[dbms],
            admin_user=admins.user(dbms),
            admin_password=admins.password(dbms),
            admin_dir=admin_dir,
            secrets=plan.secrets.path,
            database=plan.databases.name,
            user=plan.databases.user,
            **check,
        )
    databases.database_seeded(
        name="Schema and data (impots.db.seed)",
        dbms=list(plan.databases.dbms),
        touch=plan.paths.data_stamp,
        **check,
    )
