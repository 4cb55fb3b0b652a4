"""Fixtures of the end-to-end deploy tests: one real deploy for the whole session, an sshd, a browser.

The session deploy runs first and every other test reuses the converged machine; a test that changes
the machine (other data, a broken vhost) converges it back to the default data before it ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from deploy_harness import (
    DEFAULT_INVENTORY,
    REPO,
    CommandLineSampler,
    PyinfraRun,
    SshServer,
    ca_file,
    deploy_lock,
    free_port,
    https_session,
    run_deploy,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Read-only checks of the session deploy first; tests that change the machine (and converge it back) last.
MODULE_ORDER = (
    "test_deploy_sites.py",
    "test_deploy_json_flow.py",
    "test_deploy_browser.py",
    "test_deploy_exposure.py",
    "test_deploy_secrets.py",
    "test_deploy_idempotence.py",
    "test_deploy_ssh.py",
    "test_deploy_bad_input.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put this folder's tests in MODULE_ORDER, in the slots they already occupy among all the items."""
    here = Path(__file__).parent
    slots = [i for i, item in enumerate(items) if item.path.parent == here]
    ours = [items[i] for i in slots]

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return MODULE_ORDER.index(name) if name in MODULE_ORDER else len(MODULE_ORDER)

    for slot, item in zip(slots, sorted(ours, key=rank), strict=True):
        items[slot] = item


@dataclass
class DeployedMachine:
    """This machine after the session's full deploy through `inventory.py` (@local)."""

    run: PyinfraRun
    command_lines: CommandLineSampler
    ca: Path


def _preflight() -> None:
    if os.geteuid() != 0:
        pytest.fail("tests/deploy run the real deploy and must run as root")
    missing = [name for name in ("deploy.py", "inventory.py") if not (REPO / name).exists()]
    if missing:
        pytest.fail(f"nothing to deploy yet: {', '.join(missing)} missing in {REPO}")


@pytest.fixture(scope="session")
def machine_lock() -> Iterator[None]:
    """This session deploys to the machine: no other lock holder deploys until it ends."""
    with deploy_lock():
        yield


@pytest.fixture(scope="session")
def deployed(machine_lock: None) -> DeployedMachine:
    """Run the full deploy once, sampling every command line while it runs."""
    _preflight()
    with CommandLineSampler() as sampler:
        run = run_deploy(DEFAULT_INVENTORY)
    run.check_ok()
    assert not run.failed_operations(), f"operations failed: {run.failed_operations()}\n{run.tail()}"
    ca = ca_file()
    assert ca.is_file(), f"the deploy did not copy its CA back to {ca}"
    return DeployedMachine(run, sampler, ca)


@pytest.fixture
def converge_back(deployed: DeployedMachine) -> Iterator[None]:
    """Converge the machine back to the default data after a test that changed it."""
    yield
    run_deploy(DEFAULT_INVENTORY).check_ok()


@pytest.fixture
def https(deployed: DeployedMachine) -> Iterator[requests.Session]:
    """A requests session that verifies every certificate against the deploy's CA only."""
    with https_session(deployed.ca) as session:
        yield session


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    server = SshServer(tmp_path_factory.mktemp("sshd"), free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ssh_inventory(ssh_server: SshServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ssh_server.write_inventory(tmp_path_factory.mktemp("inventory") / "inventory_ssh.py")


@pytest.fixture
def open_browser(deployed: DeployedMachine, tmp_path: Path):
    """Opens headless Chromium contexts; `open_browser(trust_ca=True)` trusts the deploy's CA, and only it,
    through an NSS database in the browser's own HOME (Chromium reads no CA file argument)."""
    from playwright.sync_api import sync_playwright

    for tool, package in ((CHROMIUM, "chromium"), ("certutil", "libnss3-tools")):
        if not shutil.which(tool):
            pytest.fail(f"{tool} not found: apt-get install {package} (scripts/setup --for-tests does)")

    with sync_playwright() as playwright:
        contexts = []

        def open_context(trust_ca: bool = True):
            profile = tmp_path / f"browser-{len(contexts)}"
            nssdb = profile / "home" / ".pki" / "nssdb"
            nssdb.mkdir(parents=True)
            certutil = ["certutil", "-d", f"sql:{nssdb}"]
            subprocess.run([*certutil, "-N", "--empty-password"], check=True, capture_output=True)
            if trust_ca:
                subprocess.run(
                    [*certutil, "-A", "-n", "impots-local-ca", "-t", "C,,", "-i", str(deployed.ca)],
                    check=True,
                    capture_output=True,
                )
            context = playwright.chromium.launch_persistent_context(
                str(profile / "user-data"),
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGS,
                headless=True,
                env={**os.environ, "HOME": str(profile / "home")},
            )
            contexts.append(context)
            return context

        try:
            yield open_context
        finally:
            for context in contexts:
                context.close()
