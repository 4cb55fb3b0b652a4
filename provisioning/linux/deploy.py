"""``deploy_linux``: apply a host's plan (``provisioning.plan``) on Debian/Ubuntu or RHEL (Contract 5).

What the host gets is decided in the plan; this module maps it onto Linux primitives: packages and
init scripts, owners and modes, Debian's ``a2en*`` or RHEL's conf.d, and the Apache transaction
(snapshot, ``apachectl configtest``, restore on failure, graceful reload, smoke check, stamp).
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from provisioning.artifact import AppArtifact, build_app_artifact
from provisioning.linux import site_layout, state
from provisioning.linux.facts import TargetPlatform, VenvState, cached_fact, prefetch
from provisioning.linux.operations.apache import (
    apache_applied,
    apache_enabled,
    snapshot_command,
    stale_vhosts_removed,
)
from provisioning.linux.operations.app import (
    app_release_checked,
    app_release_switched,
    app_release_unpacked,
    app_venv,
    mod_wsgi_installed,
    release_name,
    secrets_file,
)
from provisioning.linux.operations.content import files_present, folders_present
from provisioning.linux.operations.databases import database_seeded, mysql_database, postgresql_database
from provisioning.linux.operations.hosts import hosts_block
from provisioning.linux.operations.lock import deploy_lock_released, deploy_lock_taken
from provisioning.linux.operations.redis import redis_arguments, redis_secured
from provisioning.linux.operations.selinux import selinux_configured
from provisioning.linux.operations.site_users import (
    shared_instance_retired,
    site_secrets,
    site_users_present,
)
from provisioning.linux.operations.system import (
    line_commented_out,
    packages_installed,
    postgresql_initialized,
    services_running,
)
from provisioning.linux.platforms import (
    LinuxPlatform,
    NotRootError,
    choose_platform,
    for_target,
    supported_target,
)
from provisioning.plan import Access, HostPlan, host_plan, render
from provisioning.remote_call import build_helper
from provisioning.settings import Settings, SettingsError


def ownership(access: Access, platform: LinuxPlatform, folder: bool) -> dict[str, str]:
    """The plan's ``Access`` as owner, group and mode."""
    apache = platform.apache_group
    user, group, mode = {
        Access.PRIVATE: ("root", "root", "700" if folder else "600"),
        Access.PUBLIC: ("root", "root", "755" if folder else "644"),
        Access.APACHE_READ: ("root", apache, "750" if folder else "640"),
        Access.APACHE_WRITE: (platform.apache_user, apache, "750" if folder else "640"),
    }[access]
    return {"user": user, "group": group, "mode": mode}


@deploy("impots: Linux host")
def deploy_linux(settings: Settings) -> None:
    """Provision Apache + mod_wsgi, MariaDB, PostgreSQL, Redis and the impots app on a Linux host."""
    target = host.get_fact(TargetPlatform, bind_address=settings.listen_address)
    platform = _checked_platform(settings, target)
    plan = host_plan(host.name, settings, platform, redis_auth=True)
    init = target["init"]
    files = (app_files(plan), apache_files(plan))
    artifact = build_app_artifact()
    # The release this run brings: made ready and checked first, current only just before Apache reloads.
    release = f"{plan.paths.releases}/{release_name(artifact.sha256)}"
    apply, database = apply_arguments(plan, init), database_query(plan, release)
    prefetch(state.queries(plan, init, files, apply, database, app_folders(plan)))

    deploy_lock_taken(name="Deploy lock (one run at a time on this host)", wait=settings.lock_wait)
    packages_installed(
        name="Packages (Apache, build tools, databases)",
        platform=platform.family,
        packages=platform.all_packages,
    )
    postgresql_initialized(name="PostgreSQL cluster", platform=platform.family)
    services_running(
        name="Database services running",
        platform=platform.family,
        init=init,
        services=list(platform.database_services),
    )
    _app_instance(plan, files[0])
    # Before the release check: each site's entry point logs in to Redis as its own ACL user.
    if redis := redis_arguments(plan, init):
        redis_secured(
            name="Redis: passwords (the deploy's, one ACL user per site), loopback, memory limit", **redis
        )
    _app_release(plan, artifact)
    _selinux(plan, target["selinux"])
    _databases(plan, release)
    _apache(plan, files[1])
    hosts_block(name="Hosts file block", address=settings.hosts_address, names=list(plan.hosts_names))
    app_release_switched(
        name="App release made current", sha256=artifact.sha256, install_root=plan.paths.install_root
    )
    apache_applied(
        name=f"Apache {platform.apache_service}: configtest, (re)load or app restart, smoke check",
        **apply_arguments(plan, init),
    )
    # Only once Apache runs the sites as their users from their own folders.
    shared_instance_retired(
        name="Shared logs of the layout before site users", logs=f"{plan.paths.instance_dir}/logs"
    )
    deploy_lock_released(name="Deploy lock released")


def _checked_platform(settings: Settings, target: dict) -> LinuxPlatform:
    if target["uid"] not in (None, 0):
        # Without root every step would fail half-way, and --dry would plan changes from unreadable files.
        raise NotRootError(
            f"operations would run as uid {target['uid']}, but the deploy needs root: "
            "run it as root, connect with ssh_user='root', or set _sudo=True in the host's data"
        )
    if target["bind_error"]:
        # Apache's configtest does not bind: an address foreign to the target would only fail the reload.
        problem = f"{settings.listen_address} cannot be used on this host ({target['bind_error']})"
        raise SettingsError(f"{host.name}: impots_listen_address: {problem}")
    # An unsupported release or a Python below the pins' floor is refused here, before any change.
    platform = choose_platform(target)
    return for_target(platform, supported_target(target))


def app_files(plan: HostPlan) -> list[dict]:
    """The target helper, the instance configuration and the TLS files."""
    platform, paths = plan.platform, plan.paths
    return [
        {"path": paths.helper, "src": str(build_helper()), **ownership(Access.PRIVATE, platform, False)},
        # The seeding step reads impots.json beside the secrets store: root's only now (no site reads it).
        {
            "path": paths.instance_config,
            "content": plan.instance_config,
            **ownership(Access.PRIVATE, platform, False),
        },
        # Each site's own impots.json (site_layout).
        *site_layout.instance_config_files(plan, site_layout.plan_site_instances(plan)),
        *(
            {"path": dest, "src": src, **ownership(access, platform, False)}
            for src, dest, access in plan.tls.uploads
        ),
    ]


def app_folders(plan: HostPlan) -> list[dict]:
    """Every folder of the install with its owner and mode: the plan's, and each site's own."""
    instances = site_layout.plan_site_instances(plan)
    return site_layout.instance_folders(
        plan, instances, lambda access, folder: ownership(access, plan.platform, folder)
    )


def _app_instance(plan: HostPlan, files: list[dict]) -> None:
    """The sites' users, folders, configuration and secrets."""
    paths = plan.paths
    instances = site_layout.plan_site_instances(plan)
    site_users_present(name="Site users (one per site)", users=[i.user for i in instances])
    folders_present(
        name="Folders (app, instance and each site's, logs, TLS, state)", folders=app_folders(plan)
    )
    files_present(name="Target helper, sites' configuration (impots.json) and TLS files", files=files)
    secrets_file(
        name="Deploy's secrets store (secrets.json, root only)",
        helper=paths.helper,
        path=plan.secrets.path,
        group=site_layout.STORE_GROUP,
        given=plan.secrets.given,
        generate=[*plan.secrets.generate, *plan.secrets.per_site],
        upload_dir=paths.state_dir,
    )
    site_secrets(
        name="Each site's own secrets (only the keys it uses)",
        helper=paths.helper,
        store=plan.secrets.path,
        sites=site_layout.site_secrets_arguments(instances),
        given=plan.secrets.given,
    )


def _app_release(plan: HostPlan, artifact: AppArtifact) -> None:
    """The release this run brings, its venv and mod_wsgi, checked before it can go live."""
    platform, paths = plan.platform, plan.paths
    instances = site_layout.plan_site_instances(plan)
    release = f"{paths.releases}/{release_name(artifact.sha256)}"
    app_release_unpacked(
        name="App release unpacked",
        artifact=artifact.path,
        sha256=artifact.sha256,
        install_root=paths.install_root,
    )
    app_venv(
        name="App virtual environment",
        venv=paths.venv,
        python=platform.system_python,
        requirements=f"{release}/requirements.txt",
        requirements_sha256=plan.requirements_sha256,
    )
    mod_wsgi_installed(
        name=f"mod_wsgi {plan.mod_wsgi_version}",
        venv=paths.venv,
        apxs=platform.apxs,
        version=plan.mod_wsgi_version,
        platform=platform.family,
        build_packages=platform.mod_wsgi_build_packages,
    )
    app_release_checked(
        name="App release checked (each site's entry point loads, as the site's user)",
        sha256=artifact.sha256,
        install_root=paths.install_root,
        venv=paths.venv,
        entry_points=site_layout.release_entry_points(instances),
    )


def _selinux(plan: HostPlan, mode: str) -> None:
    # After the release and the venv exist (restorecon labels what is there), before Apache reloads.
    paths = plan.paths
    selinux_configured(
        name="SELinux booleans and file contexts",
        platform=plan.platform.family,
        mode=mode,
        # _db: MariaDB and PostgreSQL over TCP; the general one: Redis (6379) and the SMTP server.
        booleans=["httpd_can_network_connect_db", "httpd_can_network_connect"],
        contexts=[
            [f"{paths.install_root}(/.*)?", "httpd_sys_content_t"],
            [f"{paths.instance_dir}/[^/]+/logs(/.*)?", "httpd_sys_rw_content_t"],
            [f"{paths.venv}/.+\\.so(\\.[^/]+)?", "lib_t"],
        ],
        relabel=[paths.install_root],
    )


def database_query(plan: HostPlan, release: str) -> dict:
    """The one state query the three database operations share (``release``: the app folder whose seed
    script is used, the release this run brings)."""
    return {
        "helper": plan.paths.helper,
        "secrets": plan.secrets.path,
        "database": plan.databases.name,
        "user": plan.databases.user,
        "dbms": list(plan.databases.dbms),
        "venv": plan.paths.venv,
        "app": release,
        "seeder_secrets": plan.paths.seeder_secrets,
    }


def _databases(plan: HostPlan, release: str) -> None:
    query = database_query(plan, release)
    if "mysql" in plan.databases.dbms:
        mysql_database(name="MariaDB database and user", **query)
    if "pgres" in plan.databases.dbms:
        postgresql_database(name="PostgreSQL database and role", **query)
    if plan.databases.dbms:
        database_seeded(name="Schema and data (impots.db.seed)", touch=plan.paths.data_stamp, **query)


def apache_files(plan: HostPlan) -> list[dict]:
    """Our Apache files: mod_wsgi's module files, Listen lines, server-wide rules, one vhost per site."""
    platform, paths = plan.platform, plan.paths
    variables = {"settings": plan.settings, "paths": paths, "platform": platform}

    # mod_wsgi's LoadModule line exists only once it is built: rendered when the operation runs.
    def wsgi_module(*templates: str):
        def content() -> str:
            module_config = cached_fact(VenvState, venv=paths.venv)["module_config"]
            return "".join(render(t, module_config=module_config, **variables) for t in templates)

        return content

    if platform.uses_a2en:
        modules = [
            (f"{platform.module_dir}/wsgi_impots.load", wsgi_module("linux/wsgi.load.j2")),
            (f"{platform.module_dir}/wsgi_impots.conf", wsgi_module("linux/wsgi.conf.j2")),
        ]
    else:
        modules = [
            (
                f"{platform.module_dir}/10-wsgi-impots.conf",
                wsgi_module("linux/wsgi.load.j2", "linux/wsgi.conf.j2"),
            )
        ]
    files = [
        *modules,
        (platform.ports_file, render("linux/ports.conf.j2", **variables)),
        (f"{platform.conf_dir}/impots.conf", render("linux/impots.conf.j2", **variables)),
        *((site.vhost_file, site.vhost) for site in plan.sites),
    ]
    public = ownership(Access.PUBLIC, platform, folder=False)
    return [{"path": path, "content": content, **public} for path, content in files]


def _apache(plan: HostPlan, files: list[dict]) -> None:
    platform, paths = plan.platform, plan.paths
    files_present(
        name="Apache configuration (mod_wsgi, Listen, deny rules, vhosts)",
        files=files,
        before=snapshot_command(paths.helper, platform.apache_config_root, paths.snapshot),
    )
    stale_vhosts_removed(
        name="Vhosts of removed sites",
        platform=platform.family,
        keep=[site.site.name for site in plan.sites],
        helper=paths.helper,
        snapshot=paths.snapshot,
    )
    if platform.uses_a2en:
        apache_enabled(
            name="Apache modules, conf and sites enabled",
            items=enabled_items(plan),
            helper=paths.helper,
            snapshot=paths.snapshot,
        )
        return
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


def enabled_items(plan: HostPlan) -> list[list]:
    # The first LoadModule wsgi_module wins silently: Debian's own mod_wsgi must stay off.
    # Debian's own defaults that expose the server: its default site, mod_status's /server-status on
    # every vhost, and security.conf (ServerTokens OS), replaced by our impots.conf.
    items = [
        ["mod", "wsgi", False],
        ["mod", "status", False],
        ["site", "000-default", False],
        ["conf", "security", False],
        ["mod", "ssl", True],
        ["mod", "headers", True],
        ["mod", "wsgi_impots", True],
        ["conf", "impots", True],
    ]
    return items + [["site", site.site.name, True] for site in plan.sites]


def apply_arguments(plan: HostPlan, init: str) -> dict:
    """The arguments of the Apache transaction (also what the state prefetch reads)."""
    platform, paths = plan.platform, plan.paths
    address = plan.settings.listen_address
    checks = [
        {
            "name": site.site.name,
            "url": site.smoke_url,
            "expect": site.expect,
            "error_log": site.error_log,
            "cacert": plan.tls.trust_anchor,
        }
        for site in plan.sites
    ]
    # Only the app reads these (its release, venv, data, and each site's configuration and secrets):
    # their change alone restarts the sites' daemons, not Apache.
    app_watched = [*plan.app_watch, *site_layout.watched(plan)]
    return {
        "platform": platform.family,
        "init": init,
        "helper": paths.helper,
        "snapshot": paths.snapshot,
        "stamp": paths.stamp,
        # What Apache itself reads comes first: the fact lists only the first few changed paths.
        "watched": [
            platform.apache_config_root,
            f"{paths.venv}/bin/mod_wsgi-express",  # rewritten whenever pip (re)installs mod_wsgi
            *(path for path in plan.reload_watch if path not in plan.app_watch),
            *app_watched,
        ],
        "smoke_checks": checks,
        "address": "127.0.0.1" if address == "*" else address,
        "app_watched": app_watched,
        "wsgi_scripts": sorted({f"{paths.app}/{site.site.wsgi_file}" for site in plan.sites}),
    }
