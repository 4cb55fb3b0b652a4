"""The deploy lock's target script (provisioning/linux/operations/lock.py), run here by a real `sh`
against a lock folder in a temporary directory, and the controller's memory of its own dead runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioning.linux.operations import lock


@pytest.fixture
def lock_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "run" / "lock" / "impots-deploy"
    monkeypatch.setattr(lock, "LOCK_PATH", str(path))
    return path


def run(action: str, run_id: str, wait: int = 0, stale: str = "") -> str:
    script = lock.DeployLock().command(action=action, run_id=run_id, wait=wait, stale=stale)
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30, check=True)
    return lock.DeployLock().process(done.stdout.splitlines())


def record(lock_path: Path) -> list[str]:
    return (lock_path / "record").read_text().split(" ", 3)


def test_a_free_lock_is_taken_with_a_lease_and_the_holder(lock_path):
    assert run("acquire", "run-a") == "acquired"
    run_id, until, started, holder = record(lock_path)
    assert run_id == "run-a" and holder.strip() == lock.HOLDER
    assert int(until) - int(started) == lock.LEASE_SECONDS
    assert abs(int(started) - time.time()) < 5
    assert run("read", "whoever") == (lock_path / "record").read_text().strip()
    assert run("acquire", "run-a") == "acquired"  # the holder itself: no wait


def test_a_held_lock_makes_another_run_wait_then_answer_busy_with_the_holder(lock_path):
    run("acquire", "run-a")
    started = time.monotonic()
    answer = run("acquire", "run-b", wait=2)
    # The script counts whole seconds (date +%s): a 2 s wait lasts more than 1 s of real time.
    assert time.monotonic() - started > 1, "the second run did not wait"
    assert answer.startswith("busy run-a ")
    message = lock.describe(answer[len("busy ") :])
    assert message.startswith(f"{lock.HOLDER} since ") and "(run run-a, lease until " in message
    assert record(lock_path)[0] == "run-a", "the waiting run touched the holder's lock"


def test_the_second_run_gets_the_lock_as_soon_as_the_first_releases_it(lock_path):
    run("acquire", "run-a")
    waiter = subprocess.Popen(
        ["sh", "-c", lock.DeployLock().command(action="acquire", run_id="run-b", wait=20)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        assert waiter.poll() is None, "the second run did not wait for the lock"
        assert run("release", "run-a") == "released"
        out, _ = waiter.communicate(timeout=10)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert out.strip() == "acquired"
    assert record(lock_path)[0] == "run-b"


def test_only_the_holder_releases(lock_path):
    run("acquire", "run-a")
    run("release", "run-b")
    assert lock_path.is_dir() and record(lock_path)[0] == "run-a"
    run("release", "run-a")
    assert not lock_path.exists()


def test_an_expired_lease_is_taken_over(lock_path):
    lock_path.mkdir(parents=True)
    past = int(time.time()) - 10
    (lock_path / "record").write_text(f"run-dead {past} {past - 100} root@elsewhere pid 1\n")
    answer = run("acquire", "run-b", wait=0)
    assert answer == f"acquired run-dead {past} {past - 100} root@elsewhere pid 1"
    assert record(lock_path)[0] == "run-b"


def test_a_run_the_controller_knows_is_dead_is_taken_over_at_once(lock_path):
    run("acquire", "run-dead")  # its lease runs for half an hour
    assert run("acquire", "run-b", wait=0).startswith("busy ")
    assert run("acquire", "run-b", wait=0, stale="run-x run-dead").startswith("acquired run-dead ")
    assert record(lock_path)[0] == "run-b"


def test_a_folder_left_without_a_record_frees_after_30_seconds(lock_path):
    lock_path.mkdir(parents=True)
    assert run("acquire", "run-b", wait=0) == "busy"  # maybe a run writing its record right now
    old = time.time() - 60
    os.utime(lock_path, (old, old))
    assert run("acquire", "run-b", wait=0) == "acquired"


def test_an_unreadable_record_is_described_as_such():
    assert lock.describe("garbage") == "an unreadable lock record 'garbage'"


def test_the_controller_remembers_its_runs_and_names_the_dead_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "impots-provisioning" / "deploy-lock" / "lab-1"
    folder.mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        machine = socket.gethostname()
        (folder / "run-gone").write_text(f'{{"pid": {gone.pid}, "controller": "{machine}"}}')
        (folder / "run-alive").write_text(f'{{"pid": {alive.pid}, "controller": "{machine}"}}')
        (folder / "run-other").write_text(f'{{"pid": {gone.pid}, "controller": "another-machine"}}')
        assert lock.dead_runs_of_ours("lab-1") == ["run-gone"]
    finally:
        alive.kill()
        alive.wait()
