"""The Windows deploy lock (provisioning/windows/lock.py): its exact scripts, parsed with the PowerShell
grammar, and whole runs against the fake machine, whose lock_record simulates the lock folder."""

from __future__ import annotations

import re

import pytest
from ps_grammar import grammar_errors
from ps_lint import lint
from test_win_grammar import AWKWARD
from win_apache_fakes import run_deploy
from win_fakes import Answer, apache_lounge_machine, laragon_machine

from provisioning.linux.operations import lock as linux_lock
from provisioning.windows.lock import RUN_ID, WinDeployLock, lock_path, root_grants
from provisioning.windows.powershell import wrap_script

pytestmark = pytest.mark.usefixtures("clean_environment")

LOCK = lock_path("C:/impots/state")
HELD = "0123456789ab 4102444800 1700000000 prof@other-pc pid 4242"


def test_lock_folder_is_under_the_state_folder():
    assert LOCK == "C:/impots/state/deploy-lock"


@pytest.mark.parametrize("action", ["acquire", "release", "read"])
@pytest.mark.parametrize("path", ["C:/impots/state/deploy-lock", "C:/Users/O'Brien/l’é $x`/deploy-lock"])
def test_lock_scripts_parse(action, path):
    script = WinDeployLock().command(action=action, lock=path, run_id=RUN_ID, wait=5, stale="aa bb")
    assert grammar_errors(wrap_script(script)) == []


def test_acquire_script_is_atomic_and_records_the_holder():
    script = WinDeployLock().command(action="acquire", lock=LOCK, run_id="r1", wait=7, stale="dead1")
    assert script.startswith(
        f"$lock = 'C:\\impots\\state\\deploy-lock'\n$me = 'r1'\n$wait = '7'\n"
        f"$lease = '{linux_lock.LEASE_SECONDS}'\n$holder = '{linux_lock.HOLDER}'\n$stale = 'dead1'\n"
    )
    # New-Item without -Force fails when the folder exists: the one atomic step.
    assert (
        "try { $null = New-Item -ItemType Directory -Path $lock -ErrorAction Stop; $made = $true }" in script
    )
    assert '"$me $($now + [long]$lease) $now $holder"' in script  # the Linux record format
    assert "-Force" not in script.split("New-Item", 1)[1].split("\n", 1)[0]


def test_held_lock_waits_then_fails_naming_the_holder_and_changes_nothing(monkeypatch):
    windows = laragon_machine()
    windows.lock_record = HELD
    result = run_deploy(monkeypatch, windows, {"impots_windows_layout": "laragon", "impots_lock_wait": 3})
    assert not result.ok
    # Not one step ran: the only script outside facts is the refusal, no upload.
    assert [kind for kind, _ in result.events] == ["script"] and "exit 75" in result.events[0][1]
    acquire = [s for s in windows.lock_seen if "New-Item" in s]
    assert len(acquire) == 1 and "$wait = '3'\n" in acquire[0]
    assert windows.lock_record == HELD  # the other run's lock is left alone
    text = "\n".join(line for _, err in result.outputs.values() for line in err)
    assert "another deploy holds this host: prof@other-pc pid 4242 since 2023-11-14 22:13:20 UTC" in text
    assert "waited 3 s (impots_lock_wait)" in text


def test_clean_run_leaves_no_lock(monkeypatch):
    windows = laragon_machine()
    result = run_deploy(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    assert result.ok
    assert [s for s in windows.lock_seen if "New-Item" in s] and windows.lock_record == ""
    assert windows.lock_seen[-1].endswith("Write-Output 'released'")


def test_failed_run_drops_the_lock(monkeypatch):
    windows = laragon_machine()
    original = windows.answer

    def failing(script):
        if "$entries += " in script:  # the Apache snapshot fails
            return Answer("", "disk full", 1)
        return original(script)

    monkeypatch.setattr(windows, "answer", failing)
    result = run_deploy(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    assert not result.ok
    assert windows.lock_record == ""  # the pyinfra callback dropped it
    assert windows.lock_seen[-1].endswith("Write-Output 'released'")


def test_no_change_run_takes_and_drops_the_lock_and_changes_nothing(monkeypatch):
    from test_win_apache_transaction import converged

    windows, _ = converged(monkeypatch, "laragon")
    windows.lock_seen.clear()
    result = run_deploy(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    assert result.ok
    assert result.events == []  # not one script outside facts, no upload: 0 changes
    assert any("New-Item" in s for s in windows.lock_seen)  # planning reads it, execution takes it
    assert windows.lock_seen[-1].endswith("Write-Output 'released'")
    assert windows.lock_record == ""


# --- a fresh host: the lock makes the install root, with the folder step's ACL -------------------------


def test_acquire_makes_a_missing_install_root_with_its_acl_at_once():
    grants = root_grants(["S-1-5-32-544", "S-1-5-18"], ["S-1-5-21-1-2-3-1002"])
    assert grants == (
        "S-1-5-18=FullControl",
        "S-1-5-21-1-2-3-1002=ReadAndExecute",
        "S-1-5-32-544=FullControl",
    )
    script = WinDeployLock().command(
        action="acquire", lock=LOCK, run_id="r1", wait=7, root="C:/impots", root_grants=grants
    )
    assert (
        "$root = 'C:\\impots'\n$rootgrants = @('S-1-5-18=FullControl', 'S-1-5-21-1-2-3-1002=ReadAndExecute', "
        "'S-1-5-32-544=FullControl')\n" in script
    )
    # Created with its ACL in one call (inheritance cut, the grants inherited by what it holds), only
    # when missing, and before the state folder, which inherits it.
    made = script.index("[IO.Directory]::CreateDirectory($root, $security)")
    assert script.index("if ($root -and -not (Test-Path -LiteralPath $root -PathType Container)) {") < made
    assert script.index("$security.SetAccessRuleProtection($true, $false)") < made
    assert "$inherit = 'ContainerInherit, ObjectInherit'" in script
    assert made < script.index("[IO.Directory]::CreateDirectory((Split-Path -Parent $lock))")
    # A grant the root would not get is not there: the same set as the folder step's.
    assert script.count("=FullControl'") == 2 and script.count("=ReadAndExecute'") == 1


@pytest.mark.parametrize("path", AWKWARD)
def test_acquire_with_a_root_parses_with_awkward_paths(path):
    script = WinDeployLock().command(
        action="acquire",
        lock=f"{path}/state/deploy-lock",
        run_id=RUN_ID,
        wait=5,
        root=path,
        root_grants=root_grants(["S-1-5-32-544", "S-1-5-18"], ["S-1-5-21-1-2-3-1002"]),
    )
    assert grammar_errors(wrap_script(script)) == []
    assert lint(script) == []


@pytest.mark.parametrize("layout", ["laragon", "apache-lounge"])
def test_the_deploy_gives_the_lock_the_install_root_s_acl(monkeypatch, layout):
    windows = laragon_machine() if layout == "laragon" else apache_lounge_machine()
    result = run_deploy(monkeypatch, windows, {"impots_windows_layout": layout})
    assert result.ok
    [acquire] = [s for s in windows.lock_seen if "New-Item" in s]
    assert "$root = 'C:\\impots'\n" in acquire
    lock_grants = re.search(r"^\$rootgrants = @\((.*)\)$", acquire, re.MULTILINE).group(1)
    # The folder step's grants on the install root ('*SID:(OI)(CI)F' / RX), as the lock's ('SID=rights').
    [root_acl] = [s for kind, s in result.events if s.startswith("$p = 'C:\\impots'\n") and "icacls.exe" in s]
    folder_grants = re.search(r"^\$grants = @\((.*)\)$", root_acl, re.MULTILINE).group(1)
    rights = {"F": "FullControl", "RX": "ReadAndExecute"}
    expected = [
        f"'{sid}={rights[right]}'"
        for sid, right in re.findall(r"'\*(S-[0-9-]+):\(OI\)\(CI\)(F|RX)'", folder_grants)
    ]
    assert lock_grants.split(", ") == sorted(expected) and len(expected) == (3 if layout == "laragon" else 2)
