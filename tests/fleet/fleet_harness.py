"""Driving a lab fleet from tests and the benchmark: the same code as scripts/fleet (scripts/fleetlab)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from fleetlab import fleet as fleets  # noqa: E402
from fleetlab.base import ensure_base  # noqa: E402
from fleetlab.config import RELEASES  # noqa: E402
from fleetlab.fleet import Fleet  # noqa: E402

PYINFRA = Path(sys.executable).with_name("pyinfra")
SITE_CHECKS = Path(__file__).with_name("site_checks.py")
SECRET_ENV = ("IMPOTS_MYSQL_PASSWORD", "IMPOTS_PGRES_PASSWORD", "IMPOTS_SECRET_KEY", "IMPOTS_SMTP_PASSWORD")


def missing_prerequisites() -> list[str]:
    problems = [] if os.geteuid() == 0 else ["root"]
    for tool in ("debootstrap", "ip", "unshare", "ssh", "ssh-keygen"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            problems.append(tool)
    return problems


def build_bases(releases: tuple[str, ...] = RELEASES) -> None:
    """Both bases at once (network-bound debootstraps overlap well); each is built only when absent."""
    with ThreadPoolExecutor(len(releases)) as pool:
        list(
            pool.map(
                lambda release: ensure_base(release, log=lambda text: print(text, file=sys.stderr)), releases
            )
        )


@contextmanager
def stopped_on_signals() -> Iterator[None]:
    """SIGTERM (a CI timeout) unwinds like Ctrl-C, so fixtures still stop the fleet's processes by pid."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def running_fleet(name: str, layout: dict[str, int]) -> Iterator[Fleet]:
    """A fleet of bare hosts ({release: count}), always taken down again (also on failure/interrupt)."""
    fleets.down(name, log=lambda text: None)  # leftovers of a run killed with SIGKILL
    with stopped_on_signals():
        try:
            for release, count in layout.items():
                fleets.up(count, release, name, log=lambda text: print(text, file=sys.stderr))
            running = fleets.load(name)
            for host in running.host_names():  # a CA fetched by an earlier fleet of the same name
                shutil.rmtree(REPO / ".artifacts" / host, ignore_errors=True)
            yield running
        finally:
            fleets.down(name, log=lambda text: print(text, file=sys.stderr))


@dataclass
class FleetRun:
    """One `pyinfra -y --json` run over the fleet: exit code, log, per-host changed/failed operations."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    report: dict[str, Any] | None

    @property
    def operations(self) -> list[dict[str, Any]]:
        if not self.report or "results" not in self.report:
            raise AssertionError(f"pyinfra printed no results (exit {self.returncode}):\n{self.tail()}")
        return self.report["results"]["operations"]

    def changed(self, host: str) -> list[str]:
        return [op["name"] for op in self.operations if host in op["success"]]

    def errors(self, host: str) -> list[str]:
        return [op["name"] for op in self.operations if host in op["error"]]

    def hosts_with(self, key: str) -> set[str]:
        return {name for op in self.operations for name in op[key]}

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.stderr.splitlines()[-lines:])

    def summary(self) -> dict[str, list[str]]:
        """The run's summary (provisioning/summary.py): host -> its lines (status first, then URLs/why)."""
        lines = self.stderr.splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("impots: summary:")]
        if not starts:
            raise AssertionError(f"no summary printed:\n{self.tail()}")
        current = ""
        hosts: dict[str, list[str]] = {current: [lines[starts[-1]]]}
        for line in lines[starts[-1] + 1 :]:
            if line.startswith("    "):
                hosts[current].append(line.strip())
            elif line.startswith("  ") and ":" in line:
                current, status = line.strip().split(": ", 1)
                hosts[current] = [status]
            else:
                break
        return hosts


def run_pyinfra(fleet: Fleet, *extra: str, timeout: float = 900) -> FleetRun:
    """The deploy over the whole fleet, from the repository root, inside the fleet's namespace."""
    inventory = fleets.write_inventory(fleet)
    env = {key: value for key, value in os.environ.items() if key not in SECRET_ENV}
    env.update(PYINFRA_PROGRESS="off", NO_COLOR="1")
    command = fleet.in_switch([str(PYINFRA), "-y", "--json", *extra, str(inventory), "deploy.py"])
    started = time.monotonic()
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - started
    try:
        report = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        report = None
    return FleetRun(proc.returncode, proc.stdout, re.sub(r"\x1b\[[0-9;]*m", "", proc.stderr), seconds, report)


def site_checks(
    fleet: Fleet, host: str, json_flow: bool = True, ca_file: Path | None = None
) -> dict[str, Any]:
    """site_checks.py for one host, run inside the fleet's namespace: {site: "ok" | problem}."""
    ca = ca_file or REPO / ".artifacts" / host / "impots-ca.pem"
    args = [sys.executable, str(SITE_CHECKS), fleet.address(host), str(ca)]
    proc = subprocess.run(
        fleet.in_switch([*args, *(["--json-flow"] if json_flow else [])]),
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if proc.returncode not in (0, 1):
        raise AssertionError(f"site checks of {host} crashed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)
