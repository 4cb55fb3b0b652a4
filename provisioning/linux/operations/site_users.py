"""One system user per site: the users, each site's own secrets file, and the shared layout retired.

See ``provisioning.site_users`` for the names and the layout.
"""

from __future__ import annotations

import hashlib

from pyinfra import host
from pyinfra.api import operation

from provisioning import remote_call
from provisioning.linux.facts import HelperJson, PathsState, SiteUsers, cached_fact

NOLOGIN = "/usr/sbin/nologin"  # on Debian and (usrmerge) on RHEL
NO_HOME = "/nonexistent"


@operation()
def site_users_present(users: list[str]):
    """
    One system user per site, each with its own group of the same name, no login shell and no home.
    A user of that name that is not of that shape (another primary group) stops the run: it was not
    made by this deploy, and the site would run with someone else's rights.

    + users: the sites' user names (``provisioning.site_users.site_user``)
    """
    state = cached_fact(SiteUsers, users=users)
    existing, groups = state["users"], set(state["groups"])
    missing = []
    for user in users:
        group = existing.get(user)
        if group is None:
            missing.append(user)
        elif group != user:
            raise OSError(
                f"user {user} exists with primary group {group}, not {user}: "
                "it was not made by this deploy; remove it or rename the site"
            )
    if not missing:
        host.noop(f"site users present: {', '.join(users)}")
        return
    for user in missing:
        if user not in groups:
            yield f"groupadd --system {user}"
        yield (
            f"useradd --system --gid {user} --no-create-home --home-dir {NO_HOME} "
            f"--shell {NOLOGIN} --comment 'impots site {user}' {user}"
        )


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@operation()
def site_secrets(helper: str, store: str, sites: list[dict], given: dict[str, str]):
    """
    Each site's own ``secrets.json``: exactly the keys it uses, copied from the deploy's store
    (``store``, root only) by the helper, 0640 root:<site group>. Compared by sha256 with what the
    store holds after this run (``given`` values win over kept ones), so values never travel back.

    + helper: target path of the helper zipapp
    + store: the deploy's secrets file (every key, root only)
    + sites: dicts with ``path``, ``group`` and ``keys`` (key in the site's file -> key in the store;
      a site without keys gets no file)
    + given: key -> value from data or environment (the store is updated with them first)
    """
    kept = (cached_fact(HelperJson, call=remote_call.secrets_status(helper, store)) or {}).get("values") or {}
    wanted = {**kept, **{key: _digest(value) for key, value in given.items()}}
    changed = False
    for site in sites:
        if not site["keys"]:
            continue
        found = cached_fact(HelperJson, call=remote_call.secrets_status(helper, site["path"])) or {}
        expected = {key: wanted.get(source) for key, source in site["keys"].items()}
        metadata = (found.get("user"), found.get("group"), found.get("mode"))
        if found.get("values") == expected and metadata == ("root", site["group"], "640"):
            continue
        changed = True
        yield remote_call.site_secrets_copy(helper, store, site["path"], site["group"], site["keys"])
    if not changed:
        host.noop("every site has its own secrets")


@operation()
def shared_instance_retired(logs: str):
    """
    After Apache runs the sites from their own folders: the shared log folder of the layout before
    site users becomes root's (kept for its history; the Apache user no longer writes there). The
    shared ``impots.json`` stays, root only: the seeding step reads it beside the secrets store.

    + logs: the shared log folder
    """
    found = cached_fact(PathsState, paths=[logs], hashes=False).get(logs)
    if not found or (found.get("user"), found.get("group"), found.get("mode")) == ("root", "root", "700"):
        host.noop("no shared logs left to retire")
        return
    yield f"chown -R root:root {logs} && chmod 700 {logs}"
