"""Per-layout records for Windows hosts: where Apache, its configuration and the vhosts live.

Two layouts, chosen by ``impots_windows_layout``:

- ``laragon``: Apache under ``<laragon>/bin/apache/httpd-<version>...`` (the version folder comes from
  facts: Laragon's current one, else the one running, else the newest), vhosts in
  ``<laragon>/etc/apache2/sites-enabled`` (which Laragon's httpd.conf already includes, whichever Apache
  version is current: the vhosts guard their module directives); Apache runs as a plain process of the
  desktop user. Laragon's own certificate does not name our sites, so TLS is the local CA, as on
  Apache Lounge.
- ``apache-lounge``: the Apache Lounge zip unpacked in ``C:/Apache24``, vhosts in ``conf/extra`` and
  included from httpd.conf by our marked block; usually installed as the ``Apache2.4`` service.

All paths use forward slashes (Apache and Python accept them; PowerShell helpers convert when needed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from provisioning.windows.operations import stamp_path

LARAGON = "laragon"
APACHE_LOUNGE = "apache-lounge"
APACHE_LOUNGE_ROOT = "C:/Apache24"

# The file Windows resolves host names with; edited in a marked block, CRLF line ends.
HOSTS_FILE = "C:/Windows/System32/drivers/etc/hosts"


class PlatformError(ValueError):
    """The Windows layout cannot be resolved from data and facts (message names what was found)."""


@dataclass(frozen=True)
class WindowsPlatform:
    layout: str
    apache_root: str
    vhosts_dir: str
    include_vhosts: bool  # our httpd.conf block must Include each vhost file (Laragon includes its folder)
    default_cert: str | None  # certificate used when impots_tls is the default source (None: make one)
    default_key: str | None
    wsgi_daemon: bool = False  # mod_wsgi has no daemon mode on Windows: embedded, one Python per Apache
    # Laragon's sites-enabled folder is read by every Apache version it has: guard mod_ssl/mod_wsgi.
    guard_modules: bool = True

    @property
    def apache_log_dir(self) -> str:
        return f"{self.apache_root}/logs"

    def state_dir(self, install_root: str) -> str:
        return f"{install_root}/state"

    def venv_markers(self, venv: str) -> tuple[str, ...]:
        """Files of the venv whose change needs an Apache restart: the venv itself (re-made with another
        Python), the requirements and mod_wsgi stamps of ``operations``."""
        return (f"{venv}/pyvenv.cfg", stamp_path(venv, "requirements"), stamp_path(venv, "mod_wsgi"))

    @property
    def httpd(self) -> str:
        return f"{self.apache_root}/bin/httpd.exe"

    @property
    def httpd_conf(self) -> str:
        return f"{self.apache_root}/conf/httpd.conf"

    @property
    def error_log(self) -> str:
        return f"{self.apache_root}/logs/error.log"

    def vhost_file(self, site_name: str) -> str:
        # On Laragon, <site>.conf replaces the file the course made by hand for the same site; never
        # auto.*, which Laragon regenerates (and deletes) in its sites-enabled folder.
        if self.layout == LARAGON and not f"{site_name}.conf".startswith("auto."):
            return f"{self.vhosts_dir}/{site_name}.conf"
        return f"{self.vhosts_dir}/impots-{site_name}.conf"


_HTTPD_VERSION = re.compile(r"^httpd-(\d+)\.(\d+)\.(\d+)")


def laragon_apache_folder(
    laragon_root: str, versions: list[str], selected: str | None, running: Sequence[str] = ()
) -> str:
    """The ``bin/apache/httpd-*`` folder to use: Laragon's current one (``Version=`` of laragon.ini) if it
    exists, else the one running (an ini without ``Version=``), else the newest."""
    if not versions:
        raise PlatformError(
            f"no Apache in {laragon_root}/bin/apache (no httpd-* folder): is Laragon installed there? "
            "Set impots_laragon_root, or impots_apache_root to the Apache folder"
        )
    if selected and selected in versions:
        return selected
    running = [name for name in running if name in versions]
    if running:
        versions = running

    def version_key(name: str) -> tuple[int, ...]:
        match = _HTTPD_VERSION.match(name)
        return tuple(int(n) for n in match.groups()) if match else (-1,)

    return max(versions, key=lambda name: (version_key(name), name))


def laragon_platform(laragon_root: str, apache_root: str) -> WindowsPlatform:
    root = laragon_root.rstrip("/")
    return WindowsPlatform(
        layout=LARAGON,
        apache_root=apache_root.rstrip("/"),
        vhosts_dir=f"{root}/etc/apache2/sites-enabled",
        include_vhosts=False,
        # Laragon's etc/ssl/laragon.crt names Laragon's own *.test sites, not ours: browsers refuse it.
        default_cert=None,
        default_key=None,
    )


def apache_lounge_platform(apache_root: str | None) -> WindowsPlatform:
    root = (apache_root or APACHE_LOUNGE_ROOT).rstrip("/")
    return WindowsPlatform(
        layout=APACHE_LOUNGE,
        apache_root=root,
        vhosts_dir=f"{root}/conf/extra",
        include_vhosts=True,
        default_cert=None,
        default_key=None,
    )
