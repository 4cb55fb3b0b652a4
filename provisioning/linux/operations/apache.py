"""Apache configuration as a transaction: snapshot before the first change, ``configtest`` before any
(re)start, restore the snapshot when the test fails, smoke-check every site after a reload.

The files themselves are written by ``content.files_present(..., before=snapshot_command(...))``.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation

from provisioning.linux.facts import ApacheEnabledItems, ApacheState, ManagedVhosts, cached_fact
from provisioning.linux.operations.system import enable_command
from provisioning.linux.platforms import platform_record

# a2en*/a2dis* kinds and the entry each one makes in *-enabled/.
_DEBIAN_KINDS = {"mod": ("mods", ".load"), "site": ("sites", ".conf"), "conf": ("conf", ".conf")}


def snapshot_command(helper: str, config_root: str, snapshot: str) -> str:
    """Keep the last working configuration (once per change) so a failed configtest can restore it."""
    return f"python3 {helper} apache-snapshot {config_root} {snapshot}"


@operation()
def apache_enabled(items: list[list], helper: str, snapshot: str):
    """
    Enable or disable Debian Apache modules, sites and confs (``a2enmod``/``a2dismod``...).

    + items: ``[kind, name, enabled]`` triples; kind is ``mod``, ``site`` or ``conf``
    + helper: target path of ``impots-helper.py``
    + snapshot: the configuration snapshot (taken before the first change)

    **Example:**

    .. code:: python

        apache_enabled(
            name="Modules",
            items=[["mod", "ssl", True], ["mod", "wsgi", False]],
            helper="/opt/impots/bin/impots-helper.py",
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
    yield snapshot_command(helper, "/etc/apache2", snapshot)
    yield from commands


@operation()
def stale_vhosts_removed(platform: str, keep: list[str], helper: str, snapshot: str):
    """
    Remove the vhosts our template wrote for sites that are no longer in the data (renamed or
    dropped), so Apache stops serving them; vhosts written by anyone else are never touched.

    + platform: platform family (``debian`` or ``rhel``)
    + keep: site names of the data
    + helper: target path of ``impots-helper.py``
    + snapshot: the configuration snapshot (taken before the first change)
    """
    record = platform_record(platform)
    stale = [name for name in cached_fact(ManagedVhosts, site_dir=record.site_dir) if name not in keep]
    if not stale:
        host.noop("no vhost of a removed site")
        return
    yield snapshot_command(helper, record.apache_config_root, snapshot)
    for name in stale:
        if record.uses_a2en:
            yield f"a2dissite -q {name}"
        yield f"rm -f {record.site_file(name)}"


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
):
    """
    Make the running Apache serve the written configuration: when it is stopped, or any watched path
    (configuration, app release, venv, secrets, certificates) changed since the last applied run,
    run ``apachectl configtest`` - on failure restore the snapshot, so the running server keeps its
    previous configuration, and fail with the test's message - then start or gracefully reload
    (restoring the snapshot if Apache does not come back) and smoke-check every site over HTTPS.
    The stamp is touched only when every site answered, so a failed run is retried next time.

    + platform: platform family (``debian`` or ``rhel``)
    + init: ``systemd`` or ``sysvinit``
    + helper: target path of ``impots-helper.py``
    + snapshot: the configuration snapshot written before the first change
    + stamp: file touched after a successful apply
    + watched: paths whose modification requires a reload
    + smoke_checks: one dict per site: ``name``, ``url``, ``expect``, ``error_log``, ``cacert``
    + address: where the sites are reached from the target (``--resolve``)
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
    config_root = record.apache_config_root
    yield (
        f"if ! impots_test=$({record.apachectl} configtest 2>&1); then "
        f"python3 {helper} apache-restore {config_root} {snapshot} >&2; "
        'printf "%s\\n" "$impots_test" >&2; '
        "echo 'impots: apachectl configtest failed: the previous configuration was restored "
        "and Apache was not restarted' >&2; exit 1; fi"
    )
    start = f"systemctl start {service}" if init == "systemd" else f"service {service} start"
    reload = f"systemctl reload {service}" if init == "systemd" else f"{record.apachectl} graceful"
    status = f"systemctl is-active --quiet {service}" if init == "systemd" else f"service {service} status"
    yield (
        f"python3 {helper} apache-reload {config_root} {snapshot} "
        f"--command {shlex.quote(reload if state['running'] else start)} --start {shlex.quote(start)} "
        f"--status {shlex.quote(status)} --error-log {record.apache_error_log}"
    )
    if not state["enabled"]:
        yield enable_command(record.family, init, service)
    for check in smoke_checks:
        arguments = [
            f"--name {check['name']}",
            f"--url {shlex.quote(check['url'])}",
            f"--address {address}",
            f"--expect {shlex.quote(check['expect'])}",
            f"--error-log {check['error_log']}",
        ]
        if check.get("cacert"):
            arguments.append(f"--cacert {check['cacert']}")
        yield f"python3 {helper} smoke {' '.join(arguments)}"
    yield f"rm -f {snapshot} && touch {stamp}"
