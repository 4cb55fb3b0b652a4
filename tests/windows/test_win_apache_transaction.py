"""The Windows Apache transaction (provisioning/windows/apache.py), with the same rules as Linux: a stamp
decides the restart (an interrupted run is finished by the next one, --dry on a converged host shows no
change), a snapshot is taken before the first change and put back when httpd -t fails or Apache does
not stay up, and every site is fetched over HTTPS before the stamp is written.

Operations are run against given facts (exact scripts), then whole deploys are planned and EXECUTED
against the fake Windows machine of win_fakes, whose answers decide what fails."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from ps_lint import lint
from pyinfra.api import FileUploadCommand, OperationError, StringCommand
from pyinfra.api.util import get_kwargs_str
from test_win_dry_run import PG_ADMIN_PASSWORD, converge
from win_apache_fakes import APPLY_OP, SNAPSHOT_OP, Scripted, converge_apache, run_deploy
from win_fakes import Answer, apache_lounge_machine, dry_run, laragon_machine
from win_optest import run_op

from provisioning.windows import apache
from provisioning.windows.powershell import wrap_script

pytestmark = pytest.mark.usefixtures("clean_environment")


HTTPD = "C:/Apache24/bin/httpd.exe"
STAMP = "C:/impots/state/apache-applied.stamp"
SNAPSHOT = "C:/impots/state/apache-snapshot"
LARAGON = "C:/laragon/bin/apache/httpd-2.4.62-240904-win64-VS17"
LARAGON_VHOST = "C:/laragon/etc/apache2/sites-enabled/flask-impots-withpgres.conf"
CHECKS = [
    {
        "name": "date-time-server",
        "url": "https://date-time-server/",
        "expect": "Date et heure du moment",
        "error_log": "C:/Apache24/logs/date-time-server-error.log",
    }
]


def fact_key(**kwargs) -> str:
    return get_kwargs_str(kwargs)


def apply_facts(running: bool, changed: list[str], service: str | None = "Apache2.4", watched=("C:/a",)):
    key = fact_key(httpd=HTTPD, service=service, stamp=STAMP, paths=list(watched))
    return {"apache.ApacheApplyState": {key: {"running": running, "stamp": None, "changed": changed}}}


def applied(facts, service: str | None = "Apache2.4", watched=("C:/a",), **extra):
    return run_op(
        apache.apache_applied,
        facts,
        httpd=HTTPD,
        service=service,
        stamp=STAMP,
        snapshot=SNAPSHOT,
        watched=list(watched),
        smoke_checks=CHECKS,
        address="127.0.0.1",
        error_log="C:/Apache24/logs/error.log",
        tls_anchor="C:/impots/tls/server.pem",
        **extra,
    )


# --- facts ------------------------------------------------------------------------------------------


def test_apply_state_fact_reads_one_json_line():
    fact = apache.ApacheApplyState()
    script = fact.command(httpd=HTTPD, service=None, stamp=STAMP, paths=["C:/impots/app", "C:/x y/z.conf"])
    assert script.startswith(
        "$httpd = 'C:\\Apache24\\bin\\httpd.exe'\n$service = ''\n"
        "$stamp = 'C:\\impots\\state\\apache-applied.stamp'\n$nostamp = '<no stamp>'\n"
        "$paths = @('C:\\impots\\app', 'C:\\x y\\z.conf')\n"
    )
    assert script.endswith("ConvertTo-Json -InputObject $result -Compress -Depth 5")
    line = '{"running":true,"stamp":"2026-11-28T17:00:00.0000000Z","changed":["C:\\\\impots\\\\app"]}'
    assert fact.process([line]) == {
        "running": True,
        "stamp": "2026-11-28T17:00:00.0000000Z",
        "changed": ["C:/impots/app"],
    }
    assert fact.process(['{"running":false,"stamp":null,"changed":["<no stamp>"]}'])["changed"] == [
        "<no stamp>"
    ]
    # No answer at all: a restart is due (never a silent "nothing to do").
    assert fact.process(["null"]) == {"running": False, "stamp": None, "changed": ["<no fact>"]}


def test_config_files_fact():
    fact = apache.ApacheConfigFiles()
    script = fact.command(paths=["C:/Apache24/conf/httpd.conf"], snapshot=SNAPSHOT)
    assert script.startswith(
        "$snapshot = 'C:\\impots\\state\\apache-snapshot'\n$files = @('C:\\Apache24\\conf\\httpd.conf')\n"
    )
    line = '{"hashes":{"C:\\\\Apache24\\\\conf\\\\httpd.conf":null},"snapshot":["C:\\\\x.conf"]}'
    assert fact.process([line]) == {
        "hashes": {"C:/Apache24/conf/httpd.conf": None},
        "snapshot": ["C:/x.conf"],
    }
    assert fact.process(['{"hashes":{},"snapshot":null}']) == {"hashes": {}, "snapshot": None}


# --- the snapshot operation -------------------------------------------------------------------------

FILES = {"C:/Apache24/conf/httpd.conf": "a" * 64, "C:/Apache24/conf/extra/impots-x.conf": "b" * 64}


def snapshot_facts(hashes: dict, pending: list[str] | None = None) -> dict:
    key = fact_key(paths=list(FILES), snapshot=SNAPSHOT)
    return {"apache.ApacheConfigFiles": {key: {"hashes": hashes, "snapshot": pending}}}


def test_snapshot_taken_before_the_first_change():
    facts = snapshot_facts(
        {"C:/Apache24/conf/httpd.conf": "a" * 64, "C:/Apache24/conf/extra/impots-x.conf": None}
    )
    commands, _ = run_op(apache.apache_config_snapshot, facts, files=FILES, snapshot=SNAPSHOT)
    assert len(commands) == 1
    assert commands[0].startswith(
        "$snapshot = 'C:\\impots\\state\\apache-snapshot'\n"
        "$files = @('C:\\Apache24\\conf\\httpd.conf', 'C:\\Apache24\\conf\\extra\\impots-x.conf')\n"
        "$entries = @()\n"
    )
    # Files the snapshot does not find are recorded as absent (the restore deletes them), and a new
    # snapshot is complete only once renamed from .partial.
    assert "    $entries += @{ path = $file; present = $present; copy = $copy }\n" in commands[0]
    assert "    $folder = $snapshot + '.partial'\n" in commands[0]
    assert commands[0].endswith(
        "if ($folder -ne $snapshot) { [IO.Directory]::Move($folder, $snapshot) }\n"
        'Write-Output "snapshot of $($entries.Count) Apache files in $snapshot"'
    )


def test_no_snapshot_when_nothing_changes_or_one_is_waiting():
    commands, noop = run_op(
        apache.apache_config_snapshot, snapshot_facts(dict(FILES)), files=FILES, snapshot=SNAPSHOT
    )
    assert commands == [] and noop == "the 2 files Apache reads are already as wanted"
    # An unfinished run's snapshot holds the last configuration that worked: kept, not replaced
    # (Windows paths: the case does not matter).
    listed = ["c:/apache24/conf/httpd.conf", "C:/Apache24/conf/extra/impots-x.conf"]
    commands, noop = run_op(
        apache.apache_config_snapshot, snapshot_facts({}, pending=listed), files=FILES, snapshot=SNAPSHOT
    )
    assert commands == [] and noop == f"a snapshot of an unfinished run is kept in {SNAPSHOT}"


def test_a_waiting_snapshot_is_completed_with_the_files_it_lacks():
    """A site added after an interrupted run: its vhost goes into the waiting snapshot too (as absent),
    so that a rejected configuration is rolled back whole. The script adds only what is not listed."""
    facts = snapshot_facts(dict(FILES), pending=["C:/Apache24/conf/httpd.conf"])
    commands, _ = run_op(apache.apache_config_snapshot, facts, files=FILES, snapshot=SNAPSHOT)
    assert len(commands) == 1
    assert "    if ($known.ContainsKey($file)) { continue }\n" in commands[0]
    # The waiting snapshot is completed in place, its manifest replaced in one step.
    assert (
        "if (Test-Path -LiteralPath $target -PathType Leaf) { [IO.File]::Replace($staged, $target, $null) }\n"
    ) in commands[0]


def test_a_file_without_wanted_digest_is_copied_but_not_compared():
    files = {"C:/Apache24/conf/httpd.conf": None}
    key = fact_key(paths=list(files), snapshot=SNAPSHOT)
    facts = {
        "apache.ApacheConfigFiles": {
            key: {"hashes": {"C:/Apache24/conf/httpd.conf": "c" * 64}, "snapshot": None}
        }
    }
    commands, _ = run_op(apache.apache_config_snapshot, facts, files=files, snapshot=SNAPSHOT)
    assert commands == []


# --- the applied operation --------------------------------------------------------------------------


def test_applied_is_a_noop_when_running_and_nothing_is_newer_than_the_stamp():
    commands, noop = applied(apply_facts(running=True, changed=[]))
    assert commands == [] and noop == "Apache is already running with this configuration"


@pytest.mark.parametrize(
    ("running", "changed"),
    [(True, ["C:/Apache24/conf/extra/impots-x.conf"]), (True, ["<no stamp>"]), (False, [])],
)
def test_applied_runs_when_something_is_newer_or_apache_is_down(running, changed):
    commands, _ = applied(apply_facts(running=running, changed=changed))
    apply, smoke, finish = commands
    assert apply.startswith(
        "$httpd = 'C:\\Apache24\\bin\\httpd.exe'\n$snapshot = 'C:\\impots\\state\\apache-snapshot'\n"
        "$address = '127.0.0.1'\n$errorlog = 'C:\\Apache24\\logs\\error.log'\n"
        "$timeout = '30'\n$settle = '2'\n"
        "function Restore-Snapshot {\n"
    )
    # httpd -t first; its failure restores and exits before any restart.
    test_at = apply.index("New-Object Diagnostics.ProcessStartInfo -ArgumentList $httpd, '-t'")
    failed = apply.index("if ($test.ExitCode -ne 0) {\n    $restored = Restore-Snapshot\n")
    exit_at = apply.index("    exit 1\n}", failed)
    assert apply.index("$service = 'Apache2.4'\nfunction Start-Apache") < test_at
    assert test_at < failed < exit_at < apply.index("try { Start-Apache }")
    assert "function Start-Apache { Restart-Service -Name $service }" in apply
    assert "Win32_Process" not in apply
    # Not staying up: the snapshot is put back and Apache started again on it, then the run fails.
    assert (
        "if ($failure) {\n    $restored = Restore-Snapshot\n    $again = 'started again'\n"
        "    try { Start-Apache; if (-not (Wait-ApacheUp)) { $again = 'could NOT be started' } }\n"
    ) in apply
    assert smoke.startswith(
        "$address = '127.0.0.1'\n$anchor = 'C:\\impots\\tls\\server.pem'\n$checkname = '1'\n"
        "$sites = @('date-time-server')\n$urls = @('https://date-time-server/')\n"
        "$expects = @('Date et heure du moment')\n"
        "$logs = @('C:\\Apache24\\logs\\date-time-server-error.log')\n"
    )
    # The stamp is written last, after the snapshot is dropped.
    assert finish == (
        "$snapshot = 'C:\\impots\\state\\apache-snapshot'\n"
        "$stamp = 'C:\\impots\\state\\apache-applied.stamp'\n"
        "if (Test-Path -LiteralPath $snapshot) { Remove-Item -LiteralPath $snapshot -Recurse -Force }\n"
        "$null = [IO.Directory]::CreateDirectory((Split-Path -Parent $stamp))\n"
        "[IO.File]::WriteAllText($stamp, [DateTime]::UtcNow.ToString('o'))"
    )


LARAGON_START = r"""$desktopuser = 'LAB-PC\eleve'
$task = 'impots - start Laragon httpd as the desktop user'
$desktop = $false
foreach ($p in @(Get-CimInstance -ClassName Win32_Process -Filter "Name = 'laragon.exe' AND SessionId > 0")) {
    $owner = Invoke-CimMethod -InputObject $p -MethodName GetOwner
    if (($owner.Domain + '\' + $owner.User) -eq $desktopuser) { $desktop = $true }
}
if (-not $desktop) {
    $restored = Restore-Snapshot
    $problem = "impots: $desktopuser has no Laragon open in a desktop session (logged off, or Laragon "
    $problem += "closed): Laragon's Apache runs as that user, in that session, and is started only there; "
    $problem += "log on as $desktopuser, open Laragon and run the deploy again"
    [Console]::Error.WriteLine($problem)
    [Console]::Error.WriteLine("impots: $restored; Apache was not restarted")
    exit 1
}
function Start-Apache {
    $registered = Get-ScheduledTask -TaskName $task -ErrorAction SilentlyContinue
    if ($registered) { Stop-ScheduledTask -TaskName $task }
    $running = @(Get-CimInstance -ClassName Win32_Process -Filter "Name = 'httpd.exe'" |
        Where-Object { $_.ExecutablePath -eq $httpd })
    foreach ($p in $running) { Stop-Process -Id $p.ProcessId -Force -ErrorAction SilentlyContinue }
    foreach ($p in $running) { Wait-Process -Id $p.ProcessId -Timeout 30 -ErrorAction SilentlyContinue }
    $action = New-ScheduledTaskAction -Execute $httpd -WorkingDirectory (Split-Path -Parent $httpd)
    $principal = New-ScheduledTaskPrincipal -UserId $desktopuser -LogonType Interactive -RunLevel Limited
    $options = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries `
        -ExecutionTimeLimit ([TimeSpan]::Zero)
    $null = Register-ScheduledTask -TaskName $task -Action $action -Principal $principal `
        -Settings $options -Force
    Start-ScheduledTask -TaskName $task
}
function Test-ApacheAlive {
    return @(Get-CimInstance -ClassName Win32_Process -Filter "Name = 'httpd.exe' AND SessionId > 0" |
        Where-Object { $_.ExecutablePath -eq $httpd }).Count -gt 0
}
"""


def test_applied_starts_laragon_s_httpd_as_the_desktop_user():
    """Point 4: Laragon's httpd is started as Laragon's desktop user, in that user's session (a scheduled
    task with an interactive principal), never as the SSH account in session 0 (WMI's
    Win32_Process.Create). Whether that user still has Laragon open is checked before anything else."""
    commands, _ = applied(
        apply_facts(running=False, changed=[], service=None),
        service=None,
        check_name=False,
        desktop_user="LAB-PC\\eleve",
    )
    apply, smoke, _ = commands
    restore_end = apply.index("function Restore-Snapshot {")
    restore_end = apply.index("\n}\n", restore_end) + 3
    assert apply[restore_end : restore_end + len(LARAGON_START)] == LARAGON_START
    assert apply[restore_end + len(LARAGON_START) :].startswith(
        "$info = New-Object Diagnostics.ProcessStartInfo"
    )
    assert "Win32_Process -MethodName Create" not in apply and "Restart-Service" not in apply
    # The desktop check exits before httpd -t; Start-Apache (the only Stop-Process) runs after it.
    assert apply.index("exit 1\n}\nfunction Start-Apache") < apply.index("-ArgumentList $httpd, '-t'")
    assert apply.index("-ArgumentList $httpd, '-t'") < apply.index("try { Start-Apache }")
    assert "$checkname = '0'\n" in smoke


def test_applied_refuses_laragon_without_a_desktop_user():
    """No desktop user known (no Laragon in a desktop session): refused when planned, before any change,
    rather than an httpd as the SSH account in session 0. Even with nothing to restart."""
    for running, changed in ((False, []), (True, [])):
        with pytest.raises(OperationError) as error:
            applied(apply_facts(running=running, changed=changed, service=None), service=None)
        assert str(error.value) == (
            "no Windows service runs C:/Apache24/bin/httpd.exe (Laragon) and no desktop user runs Laragon: "
            "its Apache is started as that user, in their session; log on to Windows, open Laragon and run "
            "the deploy again"
        )


def test_laragon_apply_state_counts_only_an_httpd_in_a_desktop_session():
    """A session-0 httpd (started over SSH by an older deploy) is not Laragon's: restarted as the user."""
    script = apache.ApacheApplyState().command(httpd=HTTPD, service=None, stamp=STAMP, paths=[])
    assert (
        "    $running = @(Get-CimInstance -ClassName Win32_Process -Filter \"Name = 'httpd.exe' AND "
        'SessionId > 0" |\n        Where-Object { $_.ExecutablePath -eq $httpd }).Count -gt 0\n'
    ) in script


# --- through the fake machine: plans ------------------------------------------------------------------


def converged(monkeypatch, layout: str):
    """A fake machine after a successful first run: every operation reports no change."""
    windows = laragon_machine() if layout == "laragon" else apache_lounge_machine()
    first, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": layout})
    converge(windows, first)
    converge_apache(windows, first)
    windows.unknown_facts.clear()
    return windows, first


def apply_state_script(windows) -> str:
    return next(script for script in windows.seen if "$nostamp = " in script)


@pytest.mark.parametrize("layout", ["laragon", "apache-lounge"])
def test_dry_run_on_a_converged_machine_shows_no_change(monkeypatch, layout):
    monkeypatch.setenv("IMPOTS_PGRES_ADMIN_PASSWORD", PG_ADMIN_PASSWORD)
    windows, _ = converged(monkeypatch, layout)
    second, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": layout})
    assert [name for name, _, change in second if change] == []
    assert windows.unknown_facts == []


def test_interrupted_run_is_finished_by_the_next_one(monkeypatch):
    """Cut between writing a vhost and the restart: every file is as wanted, but the vhost is newer
    than the stamp. The next run restarts (and only that): it is not lost as with _if=any_changed."""
    windows, _ = converged(monkeypatch, "laragon")
    windows.answers[apply_state_script(windows)] = Answer(
        json.dumps({"running": True, "stamp": "2026-11-28T17:00:00Z", "changed": [LARAGON_VHOST]}) + "\r\n"
    )
    planned, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    assert [name for name, _, change in planned if change] == [APPLY_OP]
    commands = dict((name, commands) for name, commands, _ in planned)[APPLY_OP]
    scripts = [c.get_raw_value() for c in commands]
    assert len(scripts) == 3
    assert "$desktopuser = 'LAB-PC\\eleve'\n" in scripts[0] and "Start-ScheduledTask" in scripts[0]
    assert "function Test-Site {" in scripts[1] and "[IO.File]::WriteAllText($stamp" in scripts[2]


def test_the_stamp_watches_everything_the_sites_depend_on(monkeypatch):
    windows = apache_lounge_machine()
    monkeypatch.setenv("IMPOTS_PGRES_ADMIN_PASSWORD", PG_ADMIN_PASSWORD)
    dry_run(monkeypatch, windows, {"impots_windows_layout": "apache-lounge"})
    paths = re.search(r"^\$paths = @\((.*)\)$", apply_state_script(windows), re.MULTILINE).group(1)
    assert paths.split(", ") == [
        f"'{path}'"
        for path in (
            "C:\\impots\\tls\\server.pem",
            "C:\\impots\\tls\\server.key",
            "C:\\impots\\tls\\ca.pem",
            "C:\\Apache24\\conf\\extra\\impots-flask-impots-withmysql.conf",
            "C:\\Apache24\\conf\\extra\\impots-flask-impots-withpgres.conf",
            "C:\\Apache24\\conf\\extra\\impots-date-time-server.conf",
            "C:\\Apache24\\conf\\httpd.conf",
            "C:\\impots\\app",
            "C:\\impots\\venv\\pyvenv.cfg",
            "C:\\impots\\venv\\impots-requirements.stamp",
            "C:\\impots\\venv\\impots-mod_wsgi.stamp",
            "C:\\impots\\instance\\impots.json",
            "C:\\impots\\instance\\secrets.json",
            "C:\\impots\\state\\data-seeded.stamp",  # touched when the seed repairs the tax data
        )
    ]
    assert "$service = 'Apache2.4'\n" in apply_state_script(windows)


def test_snapshot_comes_before_the_first_file_apache_reads(monkeypatch):
    windows = apache_lounge_machine()
    monkeypatch.setenv("IMPOTS_PGRES_ADMIN_PASSWORD", PG_ADMIN_PASSWORD)
    planned, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": "apache-lounge"})
    names = [name for name, _, _ in planned]
    assert names.index(SNAPSHOT_OP) + 1 == names.index("TLS file C:/impots/tls/server.pem")
    assert names[-3:] == ["Hosts file block", APPLY_OP, "Deploy lock released"]
    snapshot = dict((name, commands) for name, commands, _ in planned)[SNAPSHOT_OP][0].get_raw_value()
    # Exactly the files Apache reads that this run writes; httpd.conf with them (its block changes).
    assert snapshot.split("\n")[1] == (
        "$files = @('C:\\impots\\tls\\server.pem', 'C:\\impots\\tls\\server.key', "
        "'C:\\impots\\tls\\ca.pem', "
        "'C:\\Apache24\\conf\\extra\\impots-flask-impots-withmysql.conf', "
        "'C:\\Apache24\\conf\\extra\\impots-flask-impots-withpgres.conf', "
        "'C:\\Apache24\\conf\\extra\\impots-date-time-server.conf', 'C:\\Apache24\\conf\\httpd.conf')"
    )


# --- through the fake machine: executed runs ----------------------------------------------------------


def is_apply(script: str) -> bool:
    return "New-Object Diagnostics.ProcessStartInfo -ArgumentList $httpd, '-t'" in script


def is_smoke(script: str) -> bool:
    return "function Test-Site {" in script


def is_finish(script: str) -> bool:
    return "[IO.File]::WriteAllText($stamp, [DateTime]::UtcNow.ToString('o'))" in script


@pytest.mark.parametrize("layout", ["laragon", "apache-lounge"])
def test_full_run_order_snapshot_files_apply_smoke_stamp(monkeypatch, layout):
    windows = laragon_machine() if layout == "laragon" else apache_lounge_machine()
    result = run_deploy(monkeypatch, windows, {"impots_windows_layout": layout})
    assert result.ok
    events = result.events
    snapshot = next(i for i, (kind, text) in enumerate(events) if kind == "script" and "$entries += " in text)
    apache_puts = [
        i for i, (kind, path) in enumerate(events)
        if kind == "put" and ("/conf/" in path or "sites-enabled" in path or "/tls/" in path)
    ]  # fmt: skip
    apply = next(i for i, (kind, text) in enumerate(events) if kind == "script" and is_apply(text))
    assert apache_puts and snapshot < min(apache_puts) and max(apache_puts) < apply
    tail = [text for _, text in events[apply:]]
    assert len(tail) == 3 and is_smoke(tail[1]) and is_finish(tail[2])
    smoke = tail[1]
    assert "$sites = @('flask-impots-withmysql', 'flask-impots-withpgres', 'date-time-server')\n" in smoke
    assert (
        "$urls = @('https://flask-impots-withmysql/impots/do/', 'https://flask-impots-withpgres/impots/do/', "
        "'https://date-time-server/')\n"
    ) in smoke
    assert (
        "$expects = @('Calculez votre impôt', 'Calculez votre impôt', 'Date et heure du moment')\n" in smoke
    )
    # Both layouts: the local CA's certificate, which names every site (issue 10, point 6).
    # The anchor is the local CA (the plan's trust anchor), and each certificate must name its site.
    assert "$anchor = 'C:\\impots\\tls\\ca.pem'\n$checkname = '1'\n" in smoke
    if layout == "laragon":
        assert f"$logs = @('{LARAGON.replace('/', chr(92))}\\logs\\flask-impots-withmysql-error.log'" in smoke
        # Point 4: the desktop user the facts found (laragon.exe's owner) starts httpd, not WMI.
        assert "$desktopuser = 'LAB-PC\\eleve'\n" in tail[0]
        assert "Start-ScheduledTask -TaskName $task" in tail[0] and "Win32_Process -MethodName" not in tail[0]
    else:
        assert "$service = 'Apache2.4'\nfunction Start-Apache { Restart-Service -Name $service }" in tail[0]


def test_failing_httpd_t_restores_and_fails_with_apache_s_message(monkeypatch):
    windows = apache_lounge_machine()
    message = (
        "httpd -t rejected the configuration:\r\nAH00526: Syntax error on line 61 of "
        "C:/Apache24/conf/extra/impots-date-time-server.conf:\r\n"
        "Invalid command 'Bogus', perhaps misspelled\r\n"
        "impots: the previous configuration was restored (the rejected files are in "
        "C:\\impots\\state\\apache-snapshot-rejected); "
        "Apache was not restarted (it keeps its configuration)\r\n"
    )
    scripted = Scripted(windows)
    scripted.when(is_apply, Answer(stderr=message, status=1))
    scripted.install(monkeypatch)
    result = run_deploy(monkeypatch, windows, {"impots_windows_layout": "apache-lounge"})
    assert not result.ok
    stderr = "\n".join(result.outputs[APPLY_OP][1])
    assert "AH00526: Syntax error on line 61" in stderr and "previous configuration was restored" in stderr
    # Nothing after the failed test: no smoke check, no stamp.
    assert not any(is_smoke(s) or is_finish(s) for s in result.scripts())
    assert is_apply(result.scripts()[-1])
    # The script really restores before it exits (Restore-Snapshot defined, then called on failure).
    apply = result.scripts()[-1]
    assert apply.index("function Restore-Snapshot {") < apply.index("$restored = Restore-Snapshot")
    restore = apply[apply.index("function Restore-Snapshot {") : apply.index("$info = ")]
    assert (
        "if ($entry.present) { [IO.File]::Copy((Join-Path $snapshot $entry.copy), $entry.path, $true) }"
        in restore
    )
    assert "elseif ($present) { Remove-Item -LiteralPath $entry.path -Force }" in restore


def test_smoke_failure_names_the_site_and_leaves_the_stamp(monkeypatch):
    windows, _ = converged(monkeypatch, "laragon")
    windows.answers[apply_state_script(windows)] = Answer(
        json.dumps({"running": True, "stamp": "2026-11-28T17:00:00Z", "changed": [LARAGON_VHOST]}) + "\r\n"
    )
    message = (
        "smoke check of flask-impots-withpgres (https://flask-impots-withpgres/impots/do/) failed: HTTP 500 "
        "at https://flask-impots-withpgres/impots/do/\r\n--- last lines of "
        f"{LARAGON}/logs/flask-impots-withpgres-error.log ---\r\n[wsgi:error] OperationalError\r\n"
    )
    scripted = Scripted(windows)
    scripted.when(
        is_smoke, Answer(stdout="smoke check of date-time-server ...: 200\r\n", stderr=message, status=1)
    )
    scripted.install(monkeypatch)
    result = run_deploy(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    assert not result.ok
    assert [kind for kind, _ in result.events] == ["script", "script"]  # only the apply and the smoke
    assert is_apply(result.scripts()[0]) and is_smoke(result.scripts()[1])
    stderr = "\n".join(result.outputs[APPLY_OP][1])
    assert "smoke check of flask-impots-withpgres" in stderr and "OperationalError" in stderr
    assert not any(is_finish(s) for s in result.scripts())


def test_interrupted_run_executes_only_the_apply(monkeypatch):
    windows, _ = converged(monkeypatch, "laragon")
    windows.answers[apply_state_script(windows)] = Answer(
        json.dumps({"running": True, "stamp": "2026-11-28T17:00:00Z", "changed": [LARAGON_VHOST]}) + "\r\n"
    )
    result = run_deploy(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    assert result.ok
    scripts = result.scripts()
    assert [kind for kind, _ in result.events] == ["script"] * 3
    assert is_apply(scripts[0]) and is_smoke(scripts[1]) and is_finish(scripts[2])


# --- the vhost: impots_vhost_extra and the cipher policy, as on Linux ---------------------------------


def test_windows_vhost_has_vhost_extra_and_the_linux_tls_policy():
    from test_win_deploy import settings_for, windows_vhost

    from provisioning import plan
    from provisioning.linux.platforms import DEBIAN

    settings = settings_for(impots_vhost_extra=["Header always set X-Robots-Tag none", "LogLevel info"])
    text = windows_vhost("laragon", settings, settings.sites[0]).decode()
    assert (
        "    </Directory>\r\n\r\n    # impots_vhost_extra\r\n    Header always set X-Robots-Tag none\r\n"
        "    LogLevel info\r\n\r\n    ErrorLog "
    ) in text
    assert text.count("X-Robots-Tag") == 1  # the HTTPS vhost only
    assert text.index("X-Robots-Tag") > text.index("<VirtualHost *:443>")
    assert "impots_vhost_extra" not in windows_vhost("laragon", settings_for(), settings.sites[0]).decode()
    linux = plan.host_plan("@winssh/lab-pc", settings, DEBIAN).sites[0].vhost

    def tls_policy(vhost: str) -> list[str]:
        return [
            line.strip()
            for line in vhost.splitlines()
            if re.match(r"\s*SSL(Protocol|Cipher|Open|Honor|Sess)", line)
        ]

    assert tls_policy(text) == tls_policy(linux) and len(tls_policy(text)) == 5


# --- every script, parsed with the real PowerShell grammar --------------------------------------------


_EVERY_SCRIPT: list[str] = []


def every_script(monkeypatch) -> list[str]:
    if _EVERY_SCRIPT:
        return _EVERY_SCRIPT
    scripts = []
    for layout in ("laragon", "apache-lounge"):
        windows = laragon_machine() if layout == "laragon" else apache_lounge_machine()
        planned, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": layout})
        scripts += [s for s in windows.seen if "$nostamp = " in s or "$hashes = @{}" in s]
        for name, commands, _ in planned:
            if name in (SNAPSHOT_OP, APPLY_OP):
                scripts += [c.get_raw_value() for c in commands if isinstance(c, StringCommand)]
    _EVERY_SCRIPT.extend(dict.fromkeys(scripts))  # facts are asked twice (plan, then the listing)
    return _EVERY_SCRIPT


def test_every_transaction_script_passes_the_lint(monkeypatch):
    scripts = every_script(monkeypatch)
    # Per layout: 2 facts, the snapshot, apply + smoke + stamp; the stamp script is the same for both.
    assert len(scripts) == 2 * (2 + 1 + 3) - 1
    for script in scripts:
        assert lint(script) == [], script


def test_every_transaction_script_parses_with_the_powershell_grammar(monkeypatch):
    pytest.importorskip("tree_sitter_powershell", reason="tree-sitter-powershell is not installed")
    from ps_grammar import grammar_errors

    # The grammar itself catches what we fear: an unbalanced brace is an error.
    assert grammar_errors("if ($a -eq 1 { Write-Output 'x' }")
    for script in every_script(monkeypatch):
        assert grammar_errors(script) == [], script
        assert grammar_errors(wrap_script(script)) == [], script


def test_uploaded_vhost_hashes_are_what_the_snapshot_compares(monkeypatch):
    """The digests the snapshot operation compares are those of the bytes the vhost operation uploads:
    otherwise a converged host would take a snapshot on every run."""
    windows = laragon_machine()
    planned, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    by_name = dict((name, commands) for name, commands, _ in planned)
    upload = by_name["Vhost flask-impots-withpgres"][0]
    assert isinstance(upload, FileUploadCommand)
    wanted = hashlib.sha256(upload.src.getvalue()).hexdigest()
    facts_script = next(s for s in windows.seen if "$hashes = @{}" in s)
    # Teach the fake that every file is as wanted but one byte of this vhost: the snapshot is taken.
    files = re.search(r"^\$files = @\((.*)\)$", facts_script, re.MULTILINE).group(1)
    paths = [p.strip("'") for p in files.split(", ")]
    converge(windows, planned)
    converge_apache(windows, planned)
    hashes = json.loads(windows.answers[facts_script].stdout)["hashes"]
    assert hashes[LARAGON_VHOST.replace("/", "\\")] == wanted and set(hashes) == set(paths)
    second, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    assert not dict((name, change) for name, _, change in second)[SNAPSHOT_OP]
