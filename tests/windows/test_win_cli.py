"""`pyinfra INVENTORY deploy.py --dry` -- the real command line, deploy.py, group_data and settings --
for a Windows host whose SSH transport is the fake Windows machine (pyinfra_with_fake_windows.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from win_fakes import MEMURAI_PASSWORD

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().parent / "pyinfra_with_fake_windows.py"
SECRET = "Unique-Secret-Key-4242"
OPERATIONS = [
    "Install root",
    "Install root: Administrators, SYSTEM and Apache only",
    "Folder C:/impots/releases",
    "Virtual environment",
    "App requirements",
    "mod_wsgi built for this Apache",
    "App release ",
    "Instance configuration impots.json",
    "Secrets file (ACL)",
    "MariaDB/MySQL database and user",
    "PostgreSQL database and role",
    "Schema and data (impots.db.seed)",
    "Apache configuration snapshot",
    "Vhost flask-impots-withmysql",
    "Vhost date-time-server",
    "httpd.conf: mod_wsgi block",
    "Hosts file block",
    "Apache: configuration test, restart, smoke check",
]


def run_cli(
    tmp_path: Path,
    machine: str,
    layout: str,
    *args: str,
    sftp_log: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> tuple[int, str, list[str]]:
    """Run pyinfra against the fake ``machine`` with an inventory asking for ``layout``; returns
    (exit code, stdout + stderr, decoded scripts the machine received)."""
    inventory = tmp_path / "inventory.py"
    inventory.write_text(
        f'windows = [("@winssh/lab-pc", {{"ssh_user": "prof", "impots_windows_layout": "{layout}"}})]\n'
    )
    log = tmp_path / "received.jsonl"
    env = {
        **os.environ,
        "FAKE_WINDOWS_LOG": str(log),
        "FAKE_WINDOWS_ARTIFACTS": str(tmp_path / "artifacts"),
        "IMPOTS_SECRET_KEY": SECRET,
    }
    if sftp_log:
        env["FAKE_WINDOWS_SFTP_LOG"] = str(sftp_log)
    for name in (
        "IMPOTS_MYSQL_PASSWORD",
        "IMPOTS_PGRES_PASSWORD",
        "IMPOTS_SMTP_PASSWORD",
        "IMPOTS_MYSQL_ADMIN_PASSWORD",
        "IMPOTS_PGRES_ADMIN_PASSWORD",
    ):
        env.pop(name, None)
    # The Apache Lounge machine's Redis (Memurai) asks this password; the Laragon one is managed.
    env["IMPOTS_REDIS_PASSWORD"] = MEMURAI_PASSWORD
    env.update(extra_env or {})
    result = subprocess.run(
        [sys.executable, str(RUNNER), machine, str(inventory), "deploy.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    scripts = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result.returncode, result.stdout + result.stderr, scripts


@pytest.mark.parametrize("layout", ["laragon", "apache-lounge"])
def test_cli_dry_run_plans_every_operation(tmp_path, layout):
    code, output, scripts = run_cli(tmp_path, layout, layout, "--dry")
    assert code == 0, output
    table = output[output.index("Detected changes") :]
    for name in OPERATIONS:
        assert f"impots on Windows | {name}" in table, name
    # No stamp on a bare machine: the restart is a definite change, not a conditional one.
    restart = next(line for line in table.splitlines() if "configuration test, restart" in line)
    assert restart.split()[-3:] == ["1", "(@winssh/lab-pc)", "-"]
    # A dry run only asks questions: every script sent is a fact (JSON out, or the lock's read-only
    # look at its record), none changes anything.
    assert scripts and all(
        "ConvertTo-Json -InputObject" in script or script.startswith("$lock = '") for script in scripts
    )
    assert not any("New-Item" in script for script in scripts if script.startswith("$lock = '"))
    assert SECRET not in output and not any(SECRET in script for script in scripts)


def test_cli_diff_shows_windows_files_but_no_secret(tmp_path):
    code, output, _ = run_cli(tmp_path, "apache-lounge", "apache-lounge", "--dry", "--diff")
    assert code == 0, output
    assert "Will create C:/Apache24/conf/extra/impots-date-time-server.conf" in output
    assert "Will modify C:/Apache24/conf/httpd.conf" in output
    assert "+ LoadModule wsgi_module" in output
    assert "Will modify C:/Windows/System32/drivers/etc/hosts" in output
    assert SECRET not in output


def test_cli_stops_on_a_prerequisite_before_any_change(tmp_path):
    # The inventory asks for Laragon; the machine only has Apache Lounge.
    code, output, scripts = run_cli(tmp_path, "apache-lounge", "laragon", "--dry")
    assert code != 0
    assert "@winssh/lab-pc: no Apache in C:/laragon/bin/apache (no httpd-* folder)" in output
    assert "Detected changes" not in output
    assert all("ConvertTo-Json -InputObject" in script for script in scripts)


@pytest.mark.parametrize("layout", ["laragon", "apache-lounge"])
def test_cli_full_run_executes_every_operation(tmp_path, layout):
    """Not --dry: every operation runs through the connector (the fake answers success), uploads go
    through pyinfra's put_file with SFTP paths, and the restart runs because something changed."""
    sftp_log = tmp_path / "sftp.jsonl"
    code, output, scripts = run_cli(tmp_path, layout, layout, "-y", sftp_log=sftp_log)
    assert code == 0, output
    results = output[output.index("--> Results:") :]
    assert "Grand total" in results and "Error" in results
    total = next(line for line in results.splitlines() if "Grand total" in line).split()
    # Every operation changed something; both layouts have the plan's eight folders, the certificate,
    # key and CA uploaded and the CA trusted in LocalMachine Root; Laragon has three more (its Redis:
    # folder, ACL, file and process), Apache Lounge none (its Memurai runs, with the password given); no
    # error; the two deploy lock operations change nothing.
    changed = "33" if layout == "laragon" else "30"
    assert total[-3:] == [changed, "-", "2"]
    puts = [json.loads(line)[1] for line in sftp_log.read_text().splitlines()]
    vhosts = (
        "/C:/laragon/etc/apache2/sites-enabled/" if layout == "laragon" else "/C:/Apache24/conf/extra/impots-"
    )
    assert f"{vhosts}flask-impots-withmysql.conf" in puts
    assert "/C:/Windows/System32/drivers/etc/hosts.impots-new" in puts
    assert any(p.startswith("/C:/impots/releases/") and p.endswith(".tar.gz") for p in puts)
    restart = [s for s in scripts if "-ArgumentList $httpd, '-t'" in s]
    assert restart, "the restart did not run"
    assert ("Restart-Service" in restart[0]) == (layout == "apache-lounge")
    # The databases: the account scripts and the app's seed ran, Laragon's Redis was started with our
    # file; no password in any script (Memurai's, given, went over SFTP into the secrets file).
    assert sum("FLUSH PRIVILEGES;" in s for s in scripts) == 1
    assert sum("$rolessql = " in s for s in scripts) == 1
    assert [
        s.split("\n")[3]
        for s in scripts
        if s.startswith("$python = ") and "$arguments = '-m impots" in s and "--check" not in s
    ] == ["$arguments = '-m impots.db.seed mysql'", "$arguments = '-m impots.db.seed pgres'"]
    assert any("redis-server.exe" in s and "Win32_Process" in s for s in scripts) == (layout == "laragon")
    assert SECRET not in output and not any(SECRET in script for script in scripts)
    assert MEMURAI_PASSWORD not in output and not any(MEMURAI_PASSWORD in script for script in scripts)


def test_cli_full_run_with_an_administrator_password_never_shows_it(tmp_path):
    """The PostgreSQL superuser's password goes from the controller's environment into an upload to the
    Administrators-only folder; it is in no script and no output, even with --debug-like verbosity."""
    admin_password = "Pg-Superuser-Secret-99"
    sftp_log = tmp_path / "sftp.jsonl"
    code, output, scripts = run_cli(
        tmp_path,
        "apache-lounge",
        "apache-lounge",
        "-y",
        "-v",
        sftp_log=sftp_log,
        extra_env={"IMPOTS_PGRES_ADMIN_PASSWORD": admin_password},
    )
    assert code == 0, output
    puts = [json.loads(line)[1] for line in sftp_log.read_text().splitlines()]
    assert "/C:/impots/admin/pgres-admin.json" in puts
    assert "/C:/impots/admin/mysql-admin.json" not in puts  # MariaDB's root: no password given
    assert any("$adminfile = 'C:\\impots\\admin\\pgres-admin.json'" in s for s in scripts)
    assert admin_password not in output and not any(admin_password in s for s in scripts)
