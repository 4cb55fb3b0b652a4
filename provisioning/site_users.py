"""One system user per site (Linux): its name, its instance folder and the secrets it may read.

Every site's mod_wsgi daemons run as the site's own user and group (``impots-<site>``), so a site
reads only its own instance folder (``<root>/instance/<site>/``: ``impots.json`` and a
``secrets.json`` holding only the keys that site uses, both 0640 root:<site group>) and writes only
its own ``logs/`` (owned by the site user, 0750). Its Flask ``secret_key`` and its Redis password are
its own (``<key>@<site>`` in the store), and it logs in to Redis as its own ACL user (named as its
system user) allowed only its keys (``impots:<site>:``): no site can read or forge another's
sessions. The deploy's own store of every secret stays ``<root>/instance/secrets.json``, now readable
by root only: the database and Redis steps read it.
Windows has no daemon mode (one embedded Python per Apache): it keeps the shared instance folder.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from provisioning.settings import AppPaths, SettingsError, Site

USER_PREFIX = "impots-"
MAX_USER_NAME = 32  # useradd's limit on Linux (and utmp's)
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def site_user(site_name: str) -> str:
    """The system user (and group) of a site: ``impots-<site name>``, lower case, dots as dashes;
    a name over 32 characters keeps its first 16 and adds 8 hex digits of its sha256."""
    base = site_name.lower().replace(".", "-")
    name = f"{USER_PREFIX}{base}"
    if len(name) > MAX_USER_NAME:
        tag = hashlib.sha256(site_name.lower().encode()).hexdigest()[:8]
        name = f"{USER_PREFIX}{base[:16].rstrip('-')}-{tag}"
    if not _USER_NAME.fullmatch(name):
        raise SettingsError(f"impots_sites: {site_name!r} gives no valid system user name ({name!r})")
    return name


def site_users(sites: Iterable[Site]) -> dict[str, str]:
    """Site name -> its user; two sites that would share a user are refused (``SettingsError``)."""
    users: dict[str, str] = {}
    for site in sites:
        user = site_user(site.name)
        other = next((name for name, taken in users.items() if taken == user), None)
        if other is not None:
            raise SettingsError(
                f"impots_sites: sites {other!r} and {site.name!r} would share the system user {user!r}; "
                "rename one of them"
            )
        users[site.name] = user
    return users


def site_secret_key(site_name: str, key: str) -> str:
    """The deploy store's key of a secret that each site has its own of (``secret_key@<site>``)."""
    return f"{key}@{site_name}"


def redis_key_prefix(site_name: str) -> str:
    """The Redis keys a site may use (its ACL user's pattern is this prefix and ``*``)."""
    return f"impots:{site_name}:"


def site_secret_keys(site: Site, available: Iterable[str]) -> dict[str, str]:
    """The secrets a site reads, as key in its own file -> key in the deploy's store: an impots site
    its own Flask key and Redis password (``<key>@<site>``: no site can sign or read another's
    sessions), its database's password and SMTP's (when the host has them); the date/time example none."""
    if site.kind != "impots":
        return {}
    wanted = {
        "secret_key": site_secret_key(site.name, "secret_key"),
        f"{site.dbms}_password": f"{site.dbms}_password",
        "redis_password": site_secret_key(site.name, "redis_password"),
        "smtp_password": "smtp_password",
    }
    present = set(available)
    return {key: source for key, source in wanted.items() if source in present}


@dataclass(frozen=True)
class SiteInstance:
    site: Site
    user: str  # also its group
    folder: str  # <root>/instance/<site> (the real path the deploy writes)
    config_file: str
    secrets_file: str
    logs: str
    app_paths: AppPaths  # the same places as the app sees them (through the app link): impots.json's paths
    secret_keys: dict[str, str]  # key in the site's secrets.json -> key in the deploy's store
    redis_user: str | None  # its Redis ACL user (its system user's name) when it has its own password
    redis_key_prefix: str

    @property
    def app_instance(self) -> str:
        """The instance folder as the daemons see it (``IMPOTS_INSTANCE_PATH`` of the release check)."""
        return self.app_paths.instance


def site_instances(
    sites: Iterable[Site], instance_dir: str, paths: AppPaths, secret_keys: Iterable[str]
) -> tuple[SiteInstance, ...]:
    """Each site's instance folder, files and secrets (``secret_keys``: every key the host keeps)."""
    sites = tuple(sites)
    users, keys = site_users(sites), tuple(secret_keys)
    result = []
    for site in sites:
        folder, seen = f"{instance_dir}/{site.name}", f"{paths.instance}/{site.name}"
        secret_keys = site_secret_keys(site, keys)
        app_view = replace(
            paths,
            instance=seen,
            config_file=f"{seen}/impots.json",
            secrets_file=f"{seen}/secrets.json",
            logs=f"{seen}/logs",
            log_file=f"{seen}/logs/impots-{{dbms}}.log",
        )
        result.append(
            SiteInstance(
                site=site,
                user=users[site.name],
                folder=folder,
                config_file=f"{folder}/impots.json",
                secrets_file=f"{folder}/secrets.json",
                logs=f"{folder}/logs",
                app_paths=app_view,
                secret_keys=secret_keys,
                redis_user=users[site.name] if "redis_password" in secret_keys else None,
                redis_key_prefix=redis_key_prefix(site.name),
            )
        )
    return tuple(result)
