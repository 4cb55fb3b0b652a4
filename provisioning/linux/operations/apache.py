"""Apache configuration as a transaction: snapshot before the first change, ``configtest`` before any
(re)start, restore the snapshot when the test fails, smoke-check every site after a reload.

The files themselves are written by ``content.files_present(..., before=snapshot_command(...))``.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import StringCommand, operation

from provisioning import remote_call
from provisioning.linux.facts import ApacheEnabledItems, ApacheState, ManagedVhosts, cached_fact
from provisioning.linux.operations.system import enable_command
from provisioning.linux.platforms import LinuxPlatform, platform_record

# a2en*/a2dis* kinds and the entry each one makes in *-enabled/.
_DEBIAN_KINDS = {"mod": ("mods", ".load"), "site": ("sites", ".conf"), "conf": ("conf", ".conf")}


def snapshot_command(helper: str, config_root: str, snapshot: str) -> str:
    """Keep the last working configuration (once per change) so a failed configtest can restore it.
    As text: ``files_present(before=...)`` takes a shell command string."""
    return str(remote_call.apache_snapshot(helper, config_root, snapshot))


@operation()
def apache_enabled(items: list[list], helper: str, snapshot: str):
    """
    Enable or disable Debian Apache modules, sites and confs (``a2enmod``/``a2dismod``...).

    + items: ``[kind, name, enabled]`` triples; kind is ``mod``, ``site`` or ``conf``
    + helper: target path of the helper zipapp (``impots-helper.pyz``)
    + snapshot: the configuration snapshot (taken before the first change)

    **Example:**

    .. code:: python

        apache_enabled(
            name="Modules",
            items=[["mod", "ssl", True], ["mod", "wsgi", False]],
            helper="/opt/impots/bin/impots-helper.pyz",
            snapshot="/var/lib/impots-provisioning/apache-config-before.tar",
        )
    """
    present = set(cached_fact(ApacheEnabledItems, config_root="/etc/apache2"))
    commands = []
    for kind, item, enabled in items:
        if kind not in _DEBIAN_KINDS:
            raise ValueError(f"unknown Apache item kind {kind!r} (mod, site or conf)")
        folder, suffix = _DEBIAN_KINDS[kind]
        if (f"{folder}-enabled/{item}{suffix}" in present) != enabled:
            commands.append(f"a2{'en' if enabled else 'dis'}{kind} -q {item}")
    if not commands:
        host.noop(f"{len(items)} Apache modules, sites and confs are already as wanted")
        return
    yield remote_call.apache_snapshot(helper, "/etc/apache2", snapshot)
    yield from commands


@operation()
def stale_vhosts_removed(platform: str, keep: list[str], helper: str, snapshot: str):
    """
    Remove the vhosts our template wrote for sites that are no longer in the data (renamed or
    dropped), so Apache stops serving them; vhosts written by anyone else are never touched.

    + platform: platform family (``debian`` or ``rhel``)
    + keep: site names of the data
    + helper: target path of the helper zipapp (``impots-helper.pyz``)
    + snapshot: the configuration snapshot (taken before the first change)
    """
    record = platform_record(platform)
    stale = [name for name in cached_fact(ManagedVhosts, site_dir=record.site_dir) if name not in keep]
    if not stale:
        host.noop("no vhost of a removed site")
        return
    yield remote_call.apache_snapshot(helper, record.apache_config_root, snapshot)
    for name in stale:
        if record.uses_a2en:
            yield f"a2dissite -q {name}"
        yield f"rm -f {record.site_file(name)}"


def _configtest_or_restore(apachectl: str, restore: StringCommand) -> StringCommand:
    """``apachectl configtest``; on failure ``restore`` the snapshot and stop with the test's message."""
    return StringCommand(
        f"if ! impots_test=$({apachectl} configtest 2>&1); then",
        restore,
        '>&2; printf "%s\\n" "$impots_test" >&2; '
        "echo 'impots: apachectl configtest failed: the previous configuration was restored "
        "and Apache was not restarted' >&2; exit 1; fi",
    )


def _service_commands(apachectl: str, init: str, service: str) -> tuple[list[str], list[str], list[str]]:
    """The start, graceful reload and "is it running" commands of Apache's service."""
    if init == "systemd":
        status = ["systemctl", "is-active", "--quiet", service]
        return ["systemctl", "start", service], ["systemctl", "reload", service], status
    return ["service", service, "start"], [apachectl, "graceful"], ["service", service, "status"]


def app_only(changed: list[str], app_watched: list[str]) -> bool:
    """Every changed path is one only the app reads (``app_watched``, or under one of them)."""
    return bool(changed) and all(
        any(path == watched or path.startswith(watched.rstrip("/") + "/") for watched in app_watched)
        for path in changed
    )


@operation()
def apache_applied(
    platform: str,
    init: str,
    helper: str,
    snapshot: str,
    stamp: str,
    watched: list[str],
    smoke_checks: list[dict],
    address: str = "127.0.0.1",
    app_watched: list[str] | None = None,
    wsgi_scripts: list[str] | None = None,
):
    """
    Make the running Apache serve the written configuration and the current app: when it is stopped,
    or any watched path (configuration, certificates, mod_wsgi) changed since the last applied run,
    run ``apachectl configtest`` - on failure restore the snapshot, so the running server keeps its
    previous configuration, and fail with the test's message - then start or gracefully reload
    (restoring the snapshot if Apache does not come back) and smoke-check every site over HTTPS.
    When only paths of ``app_watched`` changed (release, venv, instance configuration, secrets,
    data), Apache is not reloaded: touching the sites' WSGI scripts makes mod_wsgi restart each
    daemon on its next request, which it retries on the new daemon (a graceful reload closes idle
    keep-alive connections and fails the requests sent on them). The stamp is touched only when every
    site answered, so a failed run is retried next time.

    + platform: platform family (``debian`` or ``rhel``)
    + init: ``systemd`` or ``sysvinit``
    + helper: target path of the helper zipapp (``impots-helper.pyz``)
    + snapshot: the configuration snapshot written before the first change
    + stamp: file touched after a successful apply
    + watched: paths whose modification requires a reload (``app_watched`` among them)
    + smoke_checks: one dict per site: ``name``, ``url``, ``expect``, ``error_log``, ``cacert``
    + address: where the sites are reached from the target (``--resolve``)
    + app_watched: paths of ``watched`` whose change alone needs only the app's daemons restarted
    + wsgi_scripts: the sites' WSGI scripts (mod_wsgi daemon mode with script reloading)
    """
    record = platform_record(platform)
    service = record.apache_service
    state = cached_fact(ApacheState, init=init, service=service, stamp=stamp, paths=watched)
    if state["running"] and not state["changed"]:
        if state["enabled"]:
            host.noop(f"{service} is already running with this configuration")
            return
        yield enable_command(record.family, init, service)
        return
    if state["running"] and wsgi_scripts and app_only(state["changed"], app_watched or []):
        # Apache keeps its children and their connections: only the daemons restart.
        yield shlex.join(["touch", "-c", "--", *wsgi_scripts])
    else:
        yield from _reloaded(record, init, helper, snapshot, running=state["running"])
    if not state["enabled"]:
        yield enable_command(record.family, init, service)
    for check in smoke_checks:
        yield remote_call.smoke_check(helper, address=address, **check)
    yield f"rm -f {snapshot} && touch {stamp}"


def _reloaded(record: LinuxPlatform, init: str, helper: str, snapshot: str, running: bool):
    """configtest (restore the snapshot on failure), then a graceful reload, or a start."""
    config_root = record.apache_config_root
    yield _configtest_or_restore(record.apachectl, remote_call.apache_restore(helper, config_root, snapshot))
    start, reload, status = _service_commands(record.apachectl, init, record.apache_service)
    yield remote_call.apache_reload(
        helper,
        config_root,
        snapshot,
        command=reload if running else start,
        start=start,
        status=status,
        error_log=record.apache_error_log,
    )
