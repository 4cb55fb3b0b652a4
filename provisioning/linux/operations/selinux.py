"""SELinux on the RHEL family: booleans and file contexts that let httpd run the app.

The deploy's rules, from the RHEL ``httpd_selinux`` policy: the install root (app, releases, instance,
venv) is ``httpd_sys_content_t`` (read-only for httpd); the log folder is ``httpd_sys_rw_content_t`` (the
app appends to its log); the venv's shared objects (mod_wsgi itself, psycopg2's, ...) are ``lib_t``,
because ``httpd_t`` may read and map ``httpd_sys_content_t`` but not map it executable, which ``dlopen``
needs, while every domain may use shared libraries labelled ``lib_t``.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation

from provisioning.linux.facts import SelinuxState
from provisioning.linux.platforms import platform_record

ACTIVE_MODES = ("enforcing", "permissive")


@operation()
def selinux_configured(
    platform: str,
    mode: str,
    booleans: list[str],
    contexts: list[list[str]],
    relabel: list[str],
):
    """
    Let httpd (mod_wsgi daemons run in the ``httpd_t`` domain) reach the databases and use the app's files
    under SELinux, enforcing or permissive (permissive only logs denials, but the host may be switched
    back to enforcing: the labels must already be right then).

    + platform: platform family (``debian`` or ``rhel``); only ``rhel`` is handled, Debian uses AppArmor
    + mode: ``enforcing``, ``permissive`` or ``disabled`` (the ``TargetPlatform`` fact's ``selinux``)
    + booleans: booleans to turn on persistently (``setsebool -P``), each only when it is off
    + contexts: ``[regex, type]`` file-context rules, added (``semanage fcontext -a``) when missing,
      modified (``-m``) when they name another type
    + relabel: folders to ``restorecon -R`` when a rule changed or a label there differs from the rules

    Nothing at all happens on Debian or where SELinux is disabled or absent (see the module docstring).

    **Example:**

    .. code:: python

        selinux_configured(
            name="SELinux booleans and file contexts",
            platform="rhel",
            mode="enforcing",
            booleans=["httpd_can_network_connect_db"],
            contexts=[["/opt/impots(/.*)?", "httpd_sys_content_t"]],
            relabel=["/opt/impots"],
        )
    """
    family = platform_record(platform).family
    if family != "rhel" or mode not in ACTIVE_MODES:
        host.noop(f"SELinux is not managed here ({family}, {mode})")
        return
    state = host.get_fact(SelinuxState, booleans=booleans, paths=relabel)
    changed = False
    for boolean in booleans:
        if state["booleans"].get(boolean) != "on":
            yield f"setsebool -P {boolean} on"
            changed = True
    rules_changed = False
    for regex, context_type in contexts:
        current = state["rules"].get(regex)
        if current == context_type:
            continue
        flag = "-a" if current is None else "-m"
        yield f"semanage fcontext {flag} -t {context_type} {shlex.quote(regex)}"
        rules_changed = True
    if rules_changed or state["relabel"]:
        yield "restorecon -R " + " ".join(shlex.quote(path) for path in relabel)
        changed = True
    if not changed:
        host.noop(f"SELinux booleans on and {', '.join(relabel)} labelled")
