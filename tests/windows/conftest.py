"""Fixtures of the Windows tests: a real sshd on 127.0.0.1 whose ``powershell`` is fake_powershell.py."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from win_fakes import MEMURAI_PASSWORD

import provisioning.plan as plan_module

HERE = Path(__file__).resolve().parent


# Secrets and administrator passwords a developer's shell may export: the Windows deploy reads them.
SECRET_VARIABLES = (
    "IMPOTS_MYSQL_PASSWORD",
    "IMPOTS_PGRES_PASSWORD",
    "IMPOTS_SECRET_KEY",
    "IMPOTS_SMTP_PASSWORD",
    "IMPOTS_MYSQL_ADMIN_PASSWORD",
    "IMPOTS_PGRES_ADMIN_PASSWORD",
    "IMPOTS_REDIS_PASSWORD",
)


@pytest.fixture(scope="session")
def controller_artifacts(tmp_path_factory) -> Path:
    """The controller's ``.artifacts`` of the tests: one local CA for the session (openssl's RSA keys
    take seconds on this machine; the plan re-uses the CA and each set of names' certificate)."""
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture
def clean_environment(monkeypatch, controller_artifacts):
    """No secret from the environment, and the TLS artifacts in the tests' own folder. Modules that
    plan deploys use it for every test: ``pytestmark = pytest.mark.usefixtures("clean_environment")``."""
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # The password of the Apache Lounge machine's Redis (Memurai), which the deploy does not manage.
    monkeypatch.setenv("IMPOTS_REDIS_PASSWORD", MEMURAI_PASSWORD)
    monkeypatch.setattr(plan_module, "ARTIFACTS_DIR", controller_artifacts)


def _deploy_harness() -> ModuleType:
    """tests/deploy/deploy_harness.py (its private sshd). tests/deploy is not a package: its folder goes
    on the path, as pytest puts it there for tests/deploy's own tests, so both import the same module
    (and it finds its sibling impots_client)."""
    deploy_tests = str(HERE.parent / "deploy")
    if deploy_tests not in sys.path:
        sys.path.insert(0, deploy_tests)
    return importlib.import_module("deploy_harness")


@dataclass
class FakeWindowsSshd:
    workdir: Path
    server: Any  # deploy_harness.SshServer

    def answer(
        self, script: str, stdout: str = "", stderr: str = "", status: int = 0, encoding: str = "utf-8"
    ) -> None:
        """What the fake powershell prints for ``script`` (the full wrapped script it receives);
        ``encoding`` is the one stdout is written in."""
        path = self.workdir / "answers.json"
        answers = json.loads(path.read_text())
        answers[hashlib.sha256(script.encode("utf-8")).hexdigest()] = {
            "stdout": stdout,
            "stderr": stderr,
            "status": status,
            "encoding": encoding,
        }
        path.write_text(json.dumps(answers))

    def received(self) -> list[dict]:
        path = self.workdir / "received.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def host_data(self) -> dict:
        return self.server.host_data()


@pytest.fixture(scope="module")
def windows_sshd(tmp_path_factory) -> Iterator[FakeWindowsSshd]:
    """The deploy tests' private sshd (own config and keys in a temp dir, stopped by pid at the end),
    with the fake powershell first on its sessions' PATH."""
    if not Path("/usr/sbin/sshd").exists():
        pytest.fail("openssh-server is not installed (/usr/sbin/sshd): scripts/setup installs it")
    harness = _deploy_harness()
    workdir = tmp_path_factory.mktemp("winsshd")
    workdir.chmod(0o700)
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    powershell = bin_dir / "powershell"
    powershell.write_text(f'#!/bin/sh\nexec {sys.executable} {HERE / "fake_powershell.py"} "$@"\n')
    powershell.chmod(0o755)
    (workdir / "answers.json").write_text("{}")
    server = harness.SshServer(
        workdir,
        harness.free_port(),
        # The fake powershell first on PATH, and where it keeps its answers and log.
        extra_config=f"SetEnv PATH={bin_dir}:/usr/bin:/bin FAKE_PS_DIR={workdir}\n",
    )
    try:
        try:
            server.start()
        except RuntimeError as error:  # sshd exited or did not listen: the message says which
            pytest.fail(str(error))
        yield FakeWindowsSshd(workdir, server)
    finally:
        server.stop()


@pytest.fixture
def drive_c() -> Iterator[Path]:
    """A folder reachable as ``C:/impots-winssh-test-<pid>`` through SFTP: Windows OpenSSH's ``/C:/...``
    is the folder ``/C:`` here. Removed afterwards (and ``/C:`` too when this fixture made it)."""
    root = Path("/C:")
    made_root = not root.exists()
    root.mkdir(exist_ok=True)
    folder = root / f"impots-winssh-test-{os.getpid()}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if made_root:
            try:
                root.rmdir()
            except OSError:  # another test run is using it: it removes it when done
                pass
