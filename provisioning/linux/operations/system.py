"""Packages and services, with the init system actually running on the target."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import StringCommand, operation
from pyinfra.facts.files import File, FindInFile

from provisioning.linux.facts import MissingPackages, ServicesState, cached_fact
from provisioning.linux.platforms import install_command, platform_record


@operation()
def packages_installed(platform: str, packages: list[str] | None = None):
    """
    Install the packages a platform needs; nothing (not even an index update) when all are there.

    + platform: platform family (``debian`` or ``rhel``)
    + packages: package names (default: the platform record's list)

    **Example:**

    .. code:: python

        packages_installed(name="Install Apache, databases, build tools", platform="debian")
    """
    record = platform_record(platform)
    wanted = list(packages or record.packages)
    missing = cached_fact(MissingPackages, manager=record.package_manager, packages=wanted)
    if not missing:
        host.noop(f"{len(wanted)} packages are already installed")
        return
    # The index is refreshed only when something must be installed: a clean run stays clean.
    yield install_command(record.package_manager, missing, update_first=True)


@operation()
def services_running(platform: str, init: str, services: list[str], enabled: bool = True):
    """
    Start services and enable them at boot, through systemd when it is PID 1, else the init scripts.

    + platform: platform family (``debian`` or ``rhel``): how init scripts are enabled
    + init: ``systemd`` or ``sysvinit`` (from the ``TargetPlatform`` fact)
    + services: service names
    + enabled: also enable them at boot

    **Example:**

    .. code:: python

        services_running(name="Databases", platform="debian", init="sysvinit", services=["mariadb"])
    """
    record = platform_record(platform)
    states = cached_fact(ServicesState, init=init, services=services)
    changed = False
    for service in services:
        state = states.get(service, {"running": False, "enabled": False})
        if not state["running"]:
            yield f"systemctl start {service}" if init == "systemd" else f"service {service} start"
            changed = True
        if enabled and not state["enabled"]:
            yield enable_command(record.family, init, service)
            changed = True
    if not changed:
        host.noop(f"{', '.join(services)} already running" + (" and enabled" if enabled else ""))


def enable_command(family: str, init: str, service: str) -> str:
    if init == "systemd":
        return f"systemctl enable --quiet {service}"
    if family == "debian":
        return f"update-rc.d {service} defaults"
    return f"chkconfig {service} on"


@operation()
def postgresql_initialized(platform: str, data_dir: str = "/var/lib/pgsql/data"):
    """
    Create the PostgreSQL cluster where the package does not (RHEL family), with password
    (scram) authentication on TCP so the app's user can log in over 127.0.0.1.

    + platform: platform family; Debian's package creates its cluster itself
    + data_dir: the cluster's data folder
    """
    if platform_record(platform).family != "rhel":
        host.noop("the postgresql package creates its own cluster on this platform")
        return
    if host.get_fact(File, path=f"{data_dir}/PG_VERSION"):
        host.noop(f"PostgreSQL cluster {data_dir} already exists")
        return
    yield StringCommand(
        "PGSETUP_INITDB_OPTIONS='--auth-host=scram-sha-256 --auth-local=peer' postgresql-setup --initdb"
    )


@operation()
def line_commented_out(path: str, pattern: str, reason: str):
    """
    Comment out every line of ``path`` matching the (grep/sed basic) regex ``pattern``.

    + path: file to edit in place
    + pattern: anchored basic regular expression, e.g. ``^Listen 80$``
    + reason: appended to the commented line so a reader knows who did it and why
    """
    if not host.get_fact(FindInFile, path=path, pattern=pattern):
        host.noop(f"no line matching {pattern} in {path}")
        return
    # '|' as the sed delimiter: patterns and reasons here contain '/' but never '|'.
    yield f"sed -i 's|{pattern}|# & # {reason}|' {path}"
