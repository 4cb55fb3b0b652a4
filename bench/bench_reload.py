"""Requests lost while the deployed stack reloads (issue 8 #3): prints sent/failed, asserts nothing.

    .venv/bin/python bench/bench_reload.py [--reloads N] [--gap S] [OPTION ...]

Deploys the default data first (under the machine's deploy lock), then for each OPTION runs 8 clients
calculating over HTTPS (the load of tests/deploy/test_deploy_hardening.py) while it reloads N times:

- ``graceful``          ``apache2ctl graceful`` with the MPM the host has (mpm_event on Debian)
- ``worker-graceful``   the same after switching Apache to mpm_worker (switched back at the end)
- ``prefork-graceful``  the same with mpm_prefork
- ``event-nokeepalive`` ``graceful`` on mpm_event with ``KeepAlive Off`` (every request a new connection)
- ``touch``             touch every site's WSGI script: mod_wsgi restarts the daemons on their next request
- ``signal``            SIGINT to every mod_wsgi daemon (display-name ``(wsgi:<site>)``), as a deploy of
                        the app alone does; the supervisor starts new ones, requests wait on the socket

Each option prints one line: requests sent, failed, resent (a kept-alive connection Apache closed before
any answer: the load resends it once, as a browser does), reloads, requests per second under load, the
resident memory of Apache's children at the end (MB), and the failures by kind.

Measured on the 2-core machine (2026-11-29, mpm_event, ``graceful``): mod_wsgi 6.1.1 unpatched lost
11 of 5316 requests over 20 reloads (503, WSGI0117: daemon socket missing while the parent re-reads its
configuration; earlier runs also had 502s, WSGI0034 token mismatch and WSGI0147 reset of a queued
connection), 6 resent. Patched (provisioning/mod_wsgi_patch.py): 0 of 6058 over 40 reloads (9 resent;
an earlier build of the same fixes: 0 of 8213 over 40); 5.0.2 patched: 0 of 2793 over 20. Without the
kept socket (fixes 1 and 2 only): event 0 of 3956 over 30, worker 1 of 5475 over 30 (a WSGI0147 reset).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "deploy"))

from deploy_harness import DEFAULT_INVENTORY, ca_file, deploy_lock, run_deploy  # noqa: E402
from test_deploy_hardening import Load  # noqa: E402 - the load the tests use

from provisioning.remote import apache as remote_apache  # noqa: E402

SCRIPTS = ("/opt/impots/app/main_withmysql.wsgi", "/opt/impots/app/main_withpgres.wsgi")
PID_FILE = Path("/run/apache2/apache2.pid")
ERROR_LOG = "/var/log/apache2/error.log"
MPMS = ("mpm_event", "mpm_worker", "mpm_prefork")
NO_KEEPALIVE = Path("/etc/apache2/conf-enabled/zz-bench-reload-nokeepalive.conf")


def graceful() -> None:
    mark = os.path.getsize(ERROR_LOG)
    subprocess.run(["apache2ctl", "graceful"], check=True)
    ready = "resuming normal operations"
    remote_apache.wait_until(lambda: ready in remote_apache.read_from(ERROR_LOG, mark), 20)


def touch() -> None:
    for script in SCRIPTS:
        os.utime(script)


def apache_processes():
    """(pid, name, /proc folder) of Apache's parent and its children; the daemons are named (wsgi:...)."""
    parent = PID_FILE.read_text().strip()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            name = (entry / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if entry.name == parent or stat.rsplit(")", 1)[1].split()[1] == parent:
            yield int(entry.name), name, entry


def daemons() -> list[int]:
    """Pids of the mod_wsgi daemons of the running Apache."""
    return [pid for pid, name, _ in apache_processes() if name.startswith(b"(wsgi:")]


def signal_daemons() -> None:
    for pid in daemons():
        os.kill(pid, signal.SIGINT)


def switch_mpm(mpm: str) -> None:
    """Enable one MPM (a change of MPM needs a full restart: Apache refuses it on graceful)."""
    for other in MPMS:
        if other != mpm:
            subprocess.run(["a2dismod", "-q", other], check=False, capture_output=True)
    subprocess.run(["a2enmod", "-q", mpm], check=True, capture_output=True)
    mark = os.path.getsize(ERROR_LOG)
    subprocess.run(["service", "apache2", "restart"], check=True, capture_output=True)
    ready = "resuming normal operations"
    remote_apache.wait_until(lambda: ready in remote_apache.read_from(ERROR_LOG, mark), 30)
    time.sleep(1)


def children_rss_mb() -> float:
    """Resident memory of Apache's parent and children, daemons excluded."""
    total = 0
    for _, name, entry in apache_processes():
        if name.startswith(b"(wsgi:"):
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        rss = [line for line in status.splitlines() if line.startswith("VmRSS:")]
        total += int(rss[0].split()[1]) if rss else 0
    return total / 1024


def kinds(failures: list[str]) -> dict[str, int]:
    """Failures by kind: Apache's error page (503: the daemon socket was missing during the reload; 502:
    the daemon refused or dropped the request; see the sites' error logs), else the client's exception
    (a reset in the middle of an answer). A kept-alive connection closed before any answer is resent
    once, as a browser does, and counted as ``resent``, not failed."""
    counts: dict[str, int] = {}
    for failure in failures:
        kind = re.sub(r"\(0x[0-9a-f]+>.*|object at 0x.*", "", failure)[:90]
        counts[kind] = counts.get(kind, 0) + 1
    return counts


OPTIONS = {
    "graceful": (None, graceful),
    "worker-graceful": ("mpm_worker", graceful),
    "prefork-graceful": ("mpm_prefork", graceful),
    "event-nokeepalive": ("nokeepalive", graceful),
    "touch": (None, touch),
    "signal": (None, signal_daemons),
}


def measure(option: str, reloads: int, gap: float) -> None:
    setup, reload = OPTIONS[option]
    if setup == "nokeepalive":
        NO_KEEPALIVE.write_text("KeepAlive Off\n")
        graceful()
    elif setup:
        switch_mpm(setup)
    try:
        started = time.monotonic()
        with Load(ca_file()) as load:
            for _ in range(reloads):
                reload()
                time.sleep(gap)
        seconds = time.monotonic() - started
        memory = children_rss_mb()
    finally:
        if setup == "nokeepalive":
            NO_KEEPALIVE.unlink()
            graceful()
        elif setup:
            switch_mpm("mpm_event")
    print(
        f"{option:18} sent {load.sent:6}  failed {load.failed:3}  resent {load.resent:3}  "
        f"reloads {reloads:3}  {load.sent / seconds:6.1f} req/s  Apache RSS {memory:6.1f} MB  "
        f"{kinds(load.failures)}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("options", nargs="*", default=list(OPTIONS), choices=list(OPTIONS))
    parser.add_argument("--reloads", type=int, default=10)
    parser.add_argument("--gap", type=float, default=2.0, help="seconds between two reloads")
    parser.add_argument("--no-deploy", action="store_true", help="the stack is deployed already")
    args = parser.parse_args()
    with deploy_lock():
        if not args.no_deploy:
            run_deploy(DEFAULT_INVENTORY).check_ok()
        for option in args.options:
            measure(option, args.reloads, args.gap)


if __name__ == "__main__":
    main()
