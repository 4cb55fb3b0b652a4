"""Apache configuration as a transaction: snapshot before the first change, ``configtest`` before any
(re)start, restore the snapshot when the test fails, smoke-check every site after a reload."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable
from io import StringIO

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import Link, Sha256File
from pyinfra.operations import files

from provisioning.linux.facts import PathsNewerThan, ServiceState
from provisioning.linux.operations.system import enable_command
from provisioning.linux.platforms import platform_record

# a2en*/a2dis* commands and the file each one links into *-enabled/.
_DEBIAN_KINDS = {"mod": ("mods", ".load"), "site": ("sites", ".conf"), "conf": ("conf", ".conf")}


def snapshot_command(helper: str, config_root: str, snapshot: str) -> str:
    return f"python3 {helper} apache-snapshot {config_root} {snapshot}"


@operation()
def apache_file(path: str, content: str | Callable[[], str], helper: str, config_root: str, snapshot: str):
    """
    Write one Apache configuration file (``--diff`` shows the change), after snapshotting the whole
    configuration if this run has not done so yet.

    + path: target path (under ``config_root``)
    + content: the wanted text, or a function returning it when the operation runs (for text
      that depends on an earlier operation, like mod_wsgi's ``LoadModule`` line)
    + helper: target path of ``impots-helper.py``
    + config_root: Apache's configuration folder (``/etc/apache2``, ``/etc/httpd``)
    + snapshot: where the last working configuration is kept until the change is applied
    """
    if callable(content):
        content = content()
    if host.get_fact(Sha256File, path=path) == hashlib.sha256(content.encode()).hexdigest():
        host.noop(f"{path} is already up to date")
        return
    # Collected before the snapshot command is yielded: pyinfra's change detection stops at the first
    # command, and files.put prints the --diff while it is iterated.
    write = list(files.put._inner(src=StringIO(content), dest=path, user="root", group="root", mode="644"))
    yield snapshot_command(helper, config_root, snapshot)
    yield from write


def _enabled_link(kind: str, item: str) -> str:
    folder, suffix = _DEBIAN_KINDS[kind]
    return f"/etc/apache2/{folder}-enabled/{item}{suffix}"


@operation()
def apache_enabled(kind: str, item: str, helper: str, snapshot: str, enabled: bool = True):
    """
    Enable (``a2enmod``/``a2ensite``/``a2enconf``) or disable a Debian Apache module, site or conf.

    + kind: ``mod``, ``site`` or ``conf``
    + item: its name in ``*-available``
    + helper: target path of ``impots-helper.py``
    + snapshot: the configuration snapshot (taken before the change)
    + enabled: ``False`` to disable it instead
    """
    if kind not in _DEBIAN_KINDS:
        raise ValueError(f"unknown Apache item kind {kind!r} (mod, site or conf)")
    present = bool(host.get_fact(Link, path=_enabled_link(kind, item)))
    if present == enabled:
        host.noop(f"{kind} {item} is already {'enabled' if enabled else 'disabled'}")
        return
    yield snapshot_command(helper, "/etc/apache2", snapshot)
    yield f"a2{'en' if enabled else 'dis'}{kind} -q {item}"


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
    and smoke-check every site over HTTPS. The stamp is touched only when every site answered, so
    an interrupted or failed run is retried next time.

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
    state = host.get_fact(ServiceState, init=init, service=record.apache_service)
    changed = host.get_fact(PathsNewerThan, stamp=stamp, paths=watched)
    if state["running"] and state["enabled"] and not changed:
        host.noop(f"{record.apache_service} is already running with this configuration")
        return
    if state["running"] and not changed:
        yield enable_command(record.family, init, record.apache_service)
        return
    config_root = record.apache_config_root
    yield (
        f"if ! impots_test=$({record.apachectl} configtest 2>&1); then "
        f"python3 {helper} apache-restore {config_root} {snapshot} >&2; "
        'printf "%s\\n" "$impots_test" >&2; '
        "echo 'impots: apachectl configtest failed: the previous configuration was restored "
        "and Apache was not restarted' >&2; exit 1; fi"
    )
    service = record.apache_service
    start = f"systemctl start {service}" if init == "systemd" else f"service {service} start"
    reload = f"systemctl reload {service}" if init == "systemd" else f"{record.apachectl} graceful"
    status = f"systemctl is-active --quiet {service}" if init == "systemd" else f"service {service} status"
    yield (
        f"python3 {helper} apache-reload {config_root} {snapshot} "
        f"--command {shlex.quote(reload if state['running'] else start)} --start {shlex.quote(start)} "
        f"--status {shlex.quote(status)} --error-log {record.apache_log_dir}/error.log"
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
