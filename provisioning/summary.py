"""One summary a lab admin can act on, printed after a run over several hosts.

Per host: each site's URL with the result of the deploy's smoke check, and the CA file clients verify
the sites with; hosts that failed, with the reason pyinfra logged for them. Hooked in by deploy.py
(`print_summary_at_exit()`); printed on stderr (stdout carries pyinfra's --json report).
"""

from __future__ import annotations

import atexit
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyinfra.context import ctx_state

from provisioning.settings import SettingsError, load_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
SMOKE_CHECK_MARK = "smoke check"  # in the name of the Apache operation that runs the smoke checks
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HOST_LINE = re.compile(r"^\[([^\]]+)\]\s*(.*)$")


class HostLog(logging.Handler):
    """Keeps pyinfra's warnings and errors per host (its lines start with "[host]")."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.lines: dict[str, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        text = _ANSI.sub("", record.getMessage()).strip()
        match = _HOST_LINE.match(text)
        if match and match.group(2):
            self.lines.setdefault(match.group(1), []).append(match.group(2).strip())


@dataclass
class HostSummary:
    name: str
    failed: bool
    smoke: str  # "passed", "FAILED", "not run"
    sites: list[str] = field(default_factory=list)
    ca_file: str | None = None
    reasons: list[str] = field(default_factory=list)


def _smoke_result(state: Any, host: Any) -> str:
    for op_hash in state.get_op_order():
        if op_hash in state.ops.get(host, {}) and any(
            SMOKE_CHECK_MARK in n for n in state.op_meta[op_hash].names
        ):
            meta = state.ops[host][op_hash].operation_meta
            return "passed" if meta.did_succeed(_raise_if_not_complete=False) else "FAILED"
    return "not run"


def host_summaries(state: Any, log: HostLog) -> list[HostSummary]:
    summaries = []
    # Every host of the run in inventory order, also those never connected (pyinfra leaves them out of
    # its activated hosts).
    for host in (host for host in state.inventory if state.is_host_in_limit(host)):
        failed = host in state.failed_hosts or host not in state.activated_hosts
        ca = REPO_ROOT / ".artifacts" / host.name / "impots-ca.pem"
        summary = HostSummary(host.name, failed, _smoke_result(state, host))
        summary.ca_file = str(ca.relative_to(REPO_ROOT)) if ca.exists() else None
        try:
            summary.sites = load_settings(host).site_urls()
        except SettingsError as error:
            summary.reasons.append(f"bad host data: {error}")
        if host not in state.activated_hosts:
            # Connection errors are logged before deploy.py (and this log) is loaded: say what failed.
            where = f"{host.data.get('ssh_hostname') or host.name}:{host.data.get('ssh_port') or 22}"
            summary.reasons.append(f"could not connect (SSH to {where}): see 'Could not connect' above")
        elif summary.failed or summary.smoke == "FAILED":
            # The last lines pyinfra logged for the host say why (the failed command and its output).
            lines = [line for line in log.lines.get(host.name, []) if not line.startswith("Error: executed")]
            summary.reasons += lines[-6:] or ["see the log above"]
        summaries.append(summary)
    return summaries


def render(summaries: list[HostSummary]) -> str:
    ok = [s for s in summaries if not s.failed and s.smoke == "passed"]
    lines = [f"impots: summary: {len(ok)} of {len(summaries)} hosts serve their sites"]
    for summary in summaries:
        if summary in ok:
            lines.append(
                f"  {summary.name}: ok, smoke check passed; CA for clients: {summary.ca_file or '-'}"
            )
            lines += [f"    {url}" for url in summary.sites]
        else:
            state = "FAILED" if summary.failed else f"smoke check {summary.smoke}"
            lines.append(f"  {summary.name}: {state}")
            lines += [f"    why: {reason}" for reason in summary.reasons]
    return "\n".join(lines)


_registered: list[HostLog] = []


def print_summary_at_exit() -> None:
    """Register the summary once per pyinfra process (deploy.py runs once per host)."""
    if _registered:
        return
    state = ctx_state.get()
    log = HostLog()
    logging.getLogger("pyinfra").addHandler(log)
    _registered.append(log)

    def at_exit() -> None:
        if not state.is_executing:  # --dry, or stopped before any host ran an operation
            return
        summaries = host_summaries(state, log)
        if len(summaries) > 1:
            print(render(summaries), file=sys.stderr)

    atexit.register(at_exit)
