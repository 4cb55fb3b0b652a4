"""Fakes for the Windows Apache transaction (provisioning/windows/apache.py), beside win_fakes:

- ``converge_apache``: teach a fake machine what a successful apply leaves behind (no file Apache reads
  differs, no snapshot waiting, Apache running, nothing newer than the stamp);
- ``run_deploy``: EXECUTE deploy_windows in-process against a fake machine (not only plan it), its file
  uploads logged, so that a failing script really stops the run and the later scripts are never sent;
- ``Scripted``: answers chosen by a predicate on the script (e.g. "the httpd -t script fails").
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from pyinfra.api import Config, FileUploadCommand, Inventory, State
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.deploy import add_deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operations import run_ops
from win_fakes import Answer, FakeWindows

from provisioning.connectors.winssh import WinSSHConnector
from provisioning.settings import load_settings
from provisioning.windows.deploy import deploy_windows

SNAPSHOT_OP = "Apache configuration snapshot"
APPLY_OP = "Apache: configuration test, restart, smoke check"


def converge_apache(windows: FakeWindows, planned) -> None:
    """After the plan ``planned`` ran: every Apache file as wanted, no snapshot, Apache up, stamp newest."""
    for script in list(windows.seen):
        if "$hashes = @{}" in script:
            windows.answers[script] = _json(_converged_files(script, planned))
        elif "$nostamp = " in script:
            windows.answers[script] = _json({"running": True, "stamp": "2026-11-28T17:00:00Z", "changed": []})


def _json(value) -> Answer:
    return Answer(json.dumps(value, separators=(",", ":")) + "\r\n")


def _converged_files(script: str, planned) -> dict:
    """The hashes the snapshot operation wants, read from what the plan uploads (or keeps)."""
    uploads = {}
    for _name, commands, _ in planned:
        for command in commands:
            if isinstance(command, FileUploadCommand):
                if hasattr(command.src, "getvalue"):
                    data = command.src.getvalue()
                else:
                    with open(command.src, "rb") as source:
                        data = source.read()
                dest = command.dest.removesuffix(".impots-new")
                uploads[dest.replace("/", "\\")] = hashlib.sha256(data).hexdigest()
    files = _assigned_array(script, "files")
    return {"hashes": {path: uploads.get(path, "0" * 64) for path in files}, "snapshot": None}


def _assigned_array(script: str, variable: str) -> list[str]:
    line = next(line for line in script.splitlines() if line.startswith(f"${variable} = @("))
    return [value.replace("''", "'") for value in re.findall(r"'((?:[^']|'')*)'", line)]


@dataclass
class Scripted:
    """Answers for scripts matching a predicate (checked before the fake's exact-script answers)."""

    windows: FakeWindows
    rules: list[tuple[Callable[[str], bool], Answer]] = field(default_factory=list)

    def when(self, predicate: Callable[[str], bool], answer: Answer) -> None:
        self.rules.append((predicate, answer))

    def install(self, monkeypatch) -> None:
        exact = self.windows.answer

        def answer(script: str) -> Answer:
            for predicate, canned in self.rules:
                if predicate(script):
                    self.windows.seen.append(script)
                    return canned
            return exact(script)

        monkeypatch.setattr(self.windows, "answer", answer)


@dataclass
class RunResult:
    ok: bool
    events: list[tuple[str, str]]  # ("script", text) or ("put", sftp path), in the order they happened
    outputs: dict[str, tuple[list[str], list[str]]]  # op name -> (stdout lines, stderr lines) if it ran

    def scripts(self) -> list[str]:
        return [text for kind, text in self.events if kind == "script"]


def run_deploy(monkeypatch, windows: FakeWindows, data: dict) -> RunResult:
    """Execute deploy_windows for one @winssh host against ``windows``; uploads are only logged."""
    events: list[tuple[str, str]] = []

    def fake_connect(self):
        self.client = windows.client()

    class LoggedSftp:
        def putfo(self, file_io, remote):
            events.append(("put", remote))

    def fake_transfer_connection(self):
        return LoggedSftp()

    fake_transfer_connection.cache = {}  # the connector's disconnect() clears pyinfra's memoize cache
    monkeypatch.setattr(WinSSHConnector, "_connect", fake_connect)
    monkeypatch.setattr(WinSSHConnector, "get_file_transfer_connection", fake_transfer_connection)
    answer = windows.answer

    def logged(script: str) -> Answer:
        # facts (the deploy lock's scripts are facts too) are not steps
        if "ConvertTo-Json -InputObject" not in script and not script.startswith("$lock = '"):
            events.append(("script", script))
        return answer(script)

    monkeypatch.setattr(windows, "answer", logged)
    inventory = Inventory(([("@winssh/lab-pc", data)], {}))
    state = State(inventory, Config())
    connect_all(state)
    host = inventory.get_host("@winssh/lab-pc")
    add_deploy(state, deploy_windows, load_settings(host))
    ok = True
    try:
        run_ops(state)
    except PyinfraError:
        ok = False
    ok = ok and host not in state.failed_hosts
    outputs = {}
    for op_hash in state.get_op_order():
        meta = state.get_op_data_for_host(host, op_hash).operation_meta
        name = list(state.get_op_meta(op_hash).names)[0].removeprefix("impots on Windows | ")
        if meta.is_complete() and meta._combined_output is not None:
            outputs[name] = (meta.stdout_lines, meta.stderr_lines)
    disconnect_all(state)
    return RunResult(ok, events, outputs)
