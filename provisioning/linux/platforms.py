"""Per-platform records: package names, paths and commands that differ between Linux families.

Chosen from facts (``/etc/os-release`` through pyinfra's ``LinuxDistribution``); everything the
deploy does differently on Debian and on RHEL is read from here, never tested inline.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from typing import Any

from provisioning.targets import (
    MIN_PYTHON,
    LinuxTarget,
    linux_target,
    python_version_text,
    supported_targets_text,
)


class UnsupportedPlatform(RuntimeError):
    """The target runs a Linux distribution we have no record for."""


class NotRootError(RuntimeError):
    """Operations would run as an ordinary user: every step of the deploy needs root."""


def _is_headers(package: str) -> bool:
    return package.endswith(("-dev", "-devel"))


@dataclass(frozen=True)
class LinuxPlatform:
    family: str  # "debian" or "rhel"
    package_manager: str  # "apt" or "dnf"
    packages: tuple[str, ...]
    # What compiling mod_wsgi needs besides the Python headers (python_packages' -dev/-devel): installed
    # only by the host that compiles it; the other hosts of its platform install the controller's wheel.
    build_packages: tuple[str, ...]
    apache_service: str
    apache_user: str
    apache_group: str
    apache_config_root: str  # snapshotted before a change, restored when configtest fails
    apachectl: str
    apxs: str
    apache_log_dir: str
    apache_error_log: str  # the server's main error log (where a failed reload is explained)
    # Where our files go. Debian: *-available + a2en*; RHEL: straight into conf.d / conf.modules.d.
    site_dir: str
    module_dir: str
    conf_dir: str
    uses_a2en: bool
    ports_file: str
    wsgi_socket_prefix: str
    database_services: tuple[str, str, str]  # mariadb, postgresql, redis
    # The Python the app's venv is built from and the packages that provide it (with venv and headers for
    # mod_wsgi). The family records hold the defaults; for_target() sets the release's (provisioning.targets).
    system_python: str = "/usr/bin/python3"
    python_packages: tuple[str, ...] = ("python3", "python3-venv", "python3-dev")
    wsgi_daemon: bool = True  # one mod_wsgi daemon process group per site
    guard_modules: bool = False  # our own module files load mod_wsgi and mod_ssl: no <IfModule> guards

    @property
    def all_packages(self) -> list[str]:
        """What every host installs: the family's packages and the release's Python (for_target), without
        the Python headers (see mod_wsgi_build_packages), each once."""
        runtime = [name for name in self.python_packages if not _is_headers(name)]
        return list(dict.fromkeys([*self.packages, *runtime]))

    @property
    def mod_wsgi_build_packages(self) -> list[str]:
        """What the host that compiles mod_wsgi adds: compiler, Apache's apxs and the Python headers."""
        headers = [name for name in self.python_packages if _is_headers(name)]
        return list(dict.fromkeys([*self.build_packages, *headers]))

    def site_file(self, site_name: str) -> str:
        return f"{self.site_dir}/{site_name}.conf"

    def vhost_file(self, site_name: str) -> str:
        return self.site_file(site_name)

    def state_dir(self, install_root: str) -> str:
        return "/var/lib/impots-provisioning"

    def venv_markers(self, venv: str) -> tuple[str, ...]:
        """Files of the venv whose change needs an Apache reload (app_venv's requirements digest)."""
        return (f"{venv}/.impots-requirements.sha256",)

    @property
    def mariadb_service(self) -> str:
        return self.database_services[0]

    @property
    def postgresql_service(self) -> str:
        return self.database_services[1]

    @property
    def redis_service(self) -> str:
        return self.database_services[2]


_COMMON_TOOLS = ("openssl", "curl", "tar", "gzip")

DEBIAN = LinuxPlatform(
    family="debian",
    package_manager="apt",
    packages=(
        "apache2",
        "ssl-cert",
        *_COMMON_TOOLS,
        "python3",
        "python3-venv",
        "mariadb-server",
        "mariadb-client",
        "postgresql",
        "redis-server",
    ),
    build_packages=("gcc", "apache2-dev"),
    apache_service="apache2",
    apache_user="www-data",
    apache_group="www-data",
    apache_config_root="/etc/apache2",
    apachectl="apache2ctl",
    apxs="/usr/bin/apxs",
    apache_log_dir="/var/log/apache2",
    apache_error_log="/var/log/apache2/error.log",
    site_dir="/etc/apache2/sites-available",
    module_dir="/etc/apache2/mods-available",
    conf_dir="/etc/apache2/conf-available",
    uses_a2en=True,
    ports_file="/etc/apache2/ports.conf",
    wsgi_socket_prefix="${APACHE_RUN_DIR}/wsgi",
    database_services=("mariadb", "postgresql", "redis-server"),
)

RHEL = LinuxPlatform(
    family="rhel",
    package_manager="dnf",
    packages=(
        "httpd",
        "mod_ssl",
        *_COMMON_TOOLS,
        "python3",
        "mariadb-server",
        "postgresql-server",
        "redis",
        "policycoreutils-python-utils",  # semanage, for the SELinux file contexts
    ),
    build_packages=("gcc", "httpd-devel", "redhat-rpm-config"),
    apache_service="httpd",
    apache_user="apache",
    apache_group="apache",
    apache_config_root="/etc/httpd",
    apachectl="apachectl",
    apxs="/usr/bin/apxs",
    apache_log_dir="/var/log/httpd",
    apache_error_log="/var/log/httpd/error_log",
    site_dir="/etc/httpd/conf.d",
    module_dir="/etc/httpd/conf.modules.d",
    conf_dir="/etc/httpd/conf.d",
    uses_a2en=False,
    # httpd.conf's own "Listen 80" is commented out by our ports file; ssl.conf's "Listen 443 https" too.
    ports_file="/etc/httpd/conf.d/00-impots-ports.conf",
    wsgi_socket_prefix="run/wsgi",
    database_services=("mariadb", "postgresql", "redis"),
    python_packages=("python3", "python3-devel"),
)

_DEBIAN_IDS = {"debian", "ubuntu", "raspbian", "linuxmint"}
_RHEL_IDS = {"rhel", "centos", "rocky", "almalinux", "fedora", "ol"}


def install_command(package_manager: str, packages: list[str], update_first: bool) -> str:
    """Install ``packages`` with apt or dnf. ``update_first``: refresh apt's index before (a bare host's
    is empty); else only when a package cannot be fetched (the index is fresh from the same run, and an
    update costs seconds)."""
    names = " ".join(shlex.quote(name) for name in packages)
    if package_manager != "apt":
        return f"dnf install -y -q {names}"
    install = f"apt-get install -y -qq --no-install-recommends {names}"
    if update_first:
        steps = f"apt-get update -qq && {install}"
    else:
        steps = f"{{ {install} || {{ apt-get update -qq && {install}; }}; }}"
    return f"export DEBIAN_FRONTEND=noninteractive && {steps}"


def choose_platform(distribution: dict[str, Any] | None) -> LinuxPlatform:
    """The record for a ``LinuxDistribution`` fact; ``UnsupportedPlatform`` names what was found."""
    distribution = distribution or {}
    meta = distribution.get("release_meta") or {}
    distro_id = str(meta.get("ID", "")).lower()
    id_like = set(str(meta.get("ID_LIKE", "")).lower().split())
    if distro_id in _DEBIAN_IDS or "debian" in id_like or "ubuntu" in id_like:
        return DEBIAN
    if distro_id in _RHEL_IDS or id_like & {"rhel", "fedora", "centos"}:
        return RHEL
    found = meta.get("PRETTY_NAME") or distribution.get("name") or distro_id or "no /etc/os-release"
    raise UnsupportedPlatform(
        f"unsupported Linux distribution {found!r}: only the Debian/Ubuntu and RHEL families are provisioned"
    )


PLATFORMS = {platform.family: platform for platform in (DEBIAN, RHEL)}


def platform_record(family: str) -> LinuxPlatform:
    """The record of a family name (``debian``/``rhel``), as operations receive it."""
    try:
        return PLATFORMS[family]
    except KeyError:
        raise UnsupportedPlatform(f"unknown platform family {family!r}") from None


def supported_target(distribution: dict[str, Any] | None) -> LinuxTarget:
    """The supported release a ``TargetPlatform`` fact describes; ``UnsupportedPlatform`` before any change.

    Refuses a release outside provisioning.targets (naming what was found and what is supported) and
    a release whose venv Python would be older than the pins need.
    """
    meta = (distribution or {}).get("release_meta") or {}
    os_id = str(meta.get("ID", "")).lower()
    version = str(meta.get("VERSION_ID", ""))
    target = linux_target(os_id, version)
    if target is None:
        found = meta.get("PRETTY_NAME") or " ".join(filter(None, (os_id, version))) or "no /etc/os-release"
        raise UnsupportedPlatform(f"unsupported target {found!r}: supported are {supported_targets_text()}")
    if target.python < MIN_PYTHON:
        raise UnsupportedPlatform(
            f"{target.label}: Python {python_version_text(target.python)} is too old for the pinned "
            f"requirements (needs {python_version_text(MIN_PYTHON)}+)"
        )
    return target


def for_target(platform: LinuxPlatform, target: LinuxTarget) -> LinuxPlatform:
    """The family record with the release's Python (executable and the packages that provide it)."""
    return replace(platform, system_python=target.python_executable, python_packages=target.python_packages)
