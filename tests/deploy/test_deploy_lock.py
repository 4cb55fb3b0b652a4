"""One deploy at a time per host (issue "Hardening" point 9), on the real machine: a run meets another
run's lock, waits the bounded time, stops naming the holder and changes nothing; a run killed with
SIGKILL while it holds the lock does not block the next run from this controller."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from deploy_harness import (
    DEFAULT_INVENTORY,
    REPO,
    deploy_env,
    diff_digests,
    plain,
    pyinfra_deploy_command,
    run_deploy,
    target_state_paths,
    tree_digest,
)

from provisioning.linux.operations.lock import LOCK_PATH

pytestmark = pytest.mark.deploy

LOCK = Path(LOCK_PATH)
RECORD = LOCK / "record"


def test_a_run_meets_another_run_s_lock_waits_then_stops_naming_it(deployed) -> None:
    """Another controller's live run holds the host (its lease runs): this run waits
    impots_lock_wait seconds, fails naming that run, and changes nothing, its lock included."""
    now = int(time.time())
    other = f"run-elsewhere {now + 600} {now - 5} teacher@lab-controller pid 4242\n"
    LOCK.mkdir(parents=True)
    RECORD.write_text(other)
    try:
        before = tree_digest(target_state_paths())
        started = time.monotonic()
        run = run_deploy(DEFAULT_INVENTORY, data={"impots_lock_wait": 3, "impots_daemon_threads": 9})
        waited = time.monotonic() - started
        assert run.returncode != 0, f"the run went ahead despite the lock:\n{run.tail()}"
        log = plain(run.stderr)
        assert "another deploy holds this host: teacher@lab-controller pid 4242 since " in log, run.tail()
        assert "(run run-elsewhere, lease until " in log and "waited 3 s (impots_lock_wait)" in log
        assert waited >= 3, f"the run did not wait for the lock ({waited:.1f} s)"
        assert diff_digests(before, tree_digest(target_state_paths())) == [], "the blocked run changed files"
        assert RECORD.read_text() == other, "the blocked run touched the other run's lock"
    finally:
        shutil.rmtree(LOCK, ignore_errors=True)


def test_a_run_killed_while_holding_the_lock_does_not_block_the_next_one(deployed, converge_back) -> None:
    # A run that changes something (so it lasts), killed with SIGKILL once it holds the lock.
    command = pyinfra_deploy_command(DEFAULT_INVENTORY, data={"impots_daemon_threads": 9})
    killed = subprocess.Popen(
        command, cwd=REPO, env=deploy_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and f"pid {killed.pid}" not in _record():
            assert killed.poll() is None, "the run ended before it was seen holding the lock"
            time.sleep(0.05)
        assert f"pid {killed.pid}" in _record(), "the run never took the lock"
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    assert LOCK.is_dir(), "the killed run's lock is gone: nothing was tested"

    started = time.monotonic()
    run = run_deploy(DEFAULT_INVENTORY).check_ok()
    assert "took over the deploy lock of a dead run: " in plain(run.stderr), run.tail()
    assert f"pid {killed.pid} since " in plain(run.stderr)
    assert time.monotonic() - started < 110, "the next run waited for the dead run's lock"
    assert not LOCK.exists(), "the run did not release its lock"


def test_a_clean_run_leaves_no_lock_and_reports_it_as_no_change(deployed) -> None:
    run = run_deploy(DEFAULT_INVENTORY).check_ok()
    run.check_no_change("a run on a converged machine")
    assert not LOCK.exists(), "the lock outlived the run"
    lock_ops = [op for op in run.results["operations"] if "| Deploy lock" in op["name"]]
    assert len(lock_ops) == 2, f"lock operations: {[op['name'] for op in run.results['operations']]}"


def _record() -> str:
    try:
        return RECORD.read_text()
    except OSError:
        return ""
