"""Issue 10: what a Windows engineer's review found would break on a real machine, one test (or more) per
numbered point, through the real connector with the fake Windows transport, or with exact commands."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from pyinfra.api import StringCommand
from win_fakes import (
    ADMIN_SID,
    DESKTOP_SID,
    MSVC,
    PYTHON,
    apache,
    apache_lounge_machine,
    dry_run,
    laragon_machine,
)

from provisioning.settings import SettingsError, parse_settings
from provisioning.targets import MIN_PYTHON
from provisioning.windows import facts, prerequisites
from provisioning.windows.deploy import WindowsDeployError
from provisioning.windows.platforms import laragon_apache_folder

REPO = Path(__file__).resolve().parents[2]
LARAGON_APACHE = "C:/laragon/bin/apache/httpd-2.4.62-240904-win64-VS17"
OLDER_APACHE = "C:/laragon/bin/apache/httpd-2.4.54-win64-VS16"

pytestmark = pytest.mark.usefixtures("clean_environment")


def plan_error(monkeypatch, windows, data=None) -> str:
    """The prerequisite error of a plan; only facts (JSON queries) were sent, never an operation."""
    with pytest.raises(WindowsDeployError) as error:
        dry_run(monkeypatch, windows, data or {"impots_windows_layout": "laragon"})
    assert all("ConvertTo-Json -InputObject" in script for script in windows.seen)
    return str(error.value)


def by_name(planned) -> dict:
    return {name: commands for name, commands, _ in planned}


def scripts(commands) -> list[str]:
    return [c.get_raw_value() for c in commands if isinstance(c, StringCommand)]


# --- 1. the Python floor comes from the pins, also for impots_windows_python -------------------------


def test_1_python_below_the_floor_is_refused_even_when_given(monkeypatch):
    assert MIN_PYTHON == (3, 11)
    windows = laragon_machine()
    python310 = {**PYTHON, "version": "3.10.11", "executable": "C:\\Python310\\python.exe"}
    windows.fact(facts.PythonInstallations, [python310], path="C:/Python310/python.exe")
    message = plan_error(
        monkeypatch,
        windows,
        {"impots_windows_layout": "laragon", "impots_windows_python": "C:/Python310/python.exe"},
    )
    assert message.startswith(
        "@winssh/lab-pc: impots_windows_python is Python 3.10.11 64-bit at C:/Python310/python.exe: the "
        "deploy needs a 64-bit Python 3.11, 3.12, 3.13, 3.14 (the pinned requirements need 3.11+"
    )


def test_1_the_automatic_choice_skips_what_the_pins_cannot_install():
    settings = SimpleNamespace(windows_python=None)
    found = [{**PYTHON, "version": "3.10.11"}, {**PYTHON, "version": "3.9.13"}]
    python, problem = prerequisites.choose_python(settings, found)
    assert python is None and problem.startswith("no usable Python installed (found: 3.10.11 64-bit")
    python, _ = prerequisites.choose_python(settings, [*found, {**PYTHON, "version": "3.12.7"}])
    assert python["version"] == "3.12.7"


# --- 2. 32-bit Apache + Python: no win32 wheels ---------------------------------------------------------


def test_2_32_bit_apache_and_python_are_refused_up_front(monkeypatch):
    python32 = {**PYTHON, "bits": 32, "executable": "C:\\Program Files (x86)\\Python311-32\\python.exe"}
    windows = laragon_machine(python=python32, apache_bits=32)
    message = plan_error(monkeypatch, windows)
    assert (
        f"@winssh/lab-pc: Apache 2.4.62 at {LARAGON_APACHE} is 32-bit: psycopg2-binary and msgspec publish "
        "no 32-bit Windows wheels; install the 64-bit (win64) Apache"
    ) in message
    assert "psycopg2-binary and msgspec have no 32-bit Windows wheels" in message  # the Python's line


# --- 3. mod_wsgi 6.x by default, the 5.0 line selectable ------------------------------------------------


def mod_wsgi_script(planned) -> str:
    return scripts(by_name(planned)["mod_wsgi built for this Apache"])[0]


def test_3_mod_wsgi_default_and_fallback(monkeypatch):
    planned, _ = dry_run(monkeypatch, laragon_machine(), {"impots_windows_layout": "laragon"})
    assert "$package = 'mod-wsgi==6.1.1'\n" in mod_wsgi_script(planned)
    data = {"impots_windows_layout": "laragon", "impots_mod_wsgi_version": "5.0.2"}
    planned, _ = dry_run(monkeypatch, laragon_machine(), data)
    script = mod_wsgi_script(planned)
    assert "$package = 'mod-wsgi==5.0.2'\n" in script
    # The stamp names the pin: switching back and forth rebuilds.
    assert "$wanted = 'mod-wsgi==5.0.2 apache=" in script


def test_3_unknown_mod_wsgi_version_is_refused():
    with pytest.raises(SettingsError, match="impots_mod_wsgi_version"):
        parse_settings(
            "@winssh/lab-pc", {"impots_mod_wsgi_version": "4.9.4"}, environ={}, default_os="windows"
        )
    # The Windows deploy's own guard (settings built another way) says the same.
    with pytest.raises(WindowsDeployError, match="'4.9.4' is not one of 6.1.1, 5.0.2"):
        prerequisites.mod_wsgi_package(SimpleNamespace(mod_wsgi_version="4.9.4"))


# --- 4. Laragon: the account that runs httpd, and named users, are granted -----------------------------


def test_4_laragon_grants_the_desktop_user_and_named_accounts(monkeypatch):
    windows = laragon_machine()
    teacher = "S-1-5-21-1111-2222-3333-1003"
    windows.fact(facts.AccountSids, {".\\prof2": teacher}, accounts=[".\\prof2"])
    data = {"impots_windows_layout": "laragon", "impots_windows_apache_accounts": [".\\prof2"]}
    planned, _ = dry_run(monkeypatch, windows, data)
    steps = by_name(planned)
    acl = scripts(steps["Install root: Administrators, SYSTEM and Apache only"])[0]
    assert f"'*{DESKTOP_SID}:(OI)(CI)RX'" in acl and f"'*{teacher}:(OI)(CI)RX'" in acl
    assert ADMIN_SID not in acl  # the SSH account does not run Laragon's Apache
    logs = scripts(steps["Writable by Apache: C:/impots/instance/logs"])[0]
    assert f"'*{DESKTOP_SID}:(OI)(CI)M'" in logs and f"'*{teacher}:(OI)(CI)M'" in logs
    secrets = scripts(steps["Secrets file (ACL)"])[0]
    assert f"'*{DESKTOP_SID}:R', '*{teacher}:R'" in secrets
    # And httpd is started as that user, in their session (test_win_apache_transaction).
    restart = scripts(steps["Apache: configuration test, restart, smoke check"])[0]
    assert "$desktopuser = 'LAB-PC\\eleve'\n" in restart and "Start-ScheduledTask -TaskName $task" in restart


def test_4_unknown_named_account_and_laragon_not_running(monkeypatch):
    windows = laragon_machine()
    windows.fact(facts.AccountSids, {"nobody": None}, accounts=["nobody"])
    windows.fact(facts.ProcessOwners, [], program="laragon.exe")
    data = {"impots_windows_layout": "laragon", "impots_windows_apache_accounts": ["nobody"]}
    message = plan_error(monkeypatch, windows, data)
    assert "@winssh/lab-pc: impots_windows_apache_accounts: no such Windows account: nobody" in message
    assert "@winssh/lab-pc: Laragon is not running (no laragon.exe in a desktop session)" in message


def test_4_no_desktop_user_is_refused_before_any_change(monkeypatch):
    """Laragon only in session 0 (started by a service or over SSH): no desktop user to run httpd as, so
    the run stops at the prerequisites, not with an httpd as the SSH account that Laragon does not know."""
    windows = laragon_machine()
    session0 = {"pid": 4100, "owner_sid": ADMIN_SID, "owner": "LAB-PC\\prof", "session": 0, "path": "x"}
    windows.fact(facts.ProcessOwners, [session0], program="laragon.exe")
    message = plan_error(monkeypatch, windows)
    assert message == (
        "@winssh/lab-pc: Laragon is not running (no laragon.exe in a desktop session): open Laragon from "
        "C:/laragon on the Windows desktop and keep it open; the deploy restarts Apache in Laragon's "
        "session, as its user"
    )


def test_4_reader_accounts_pure():
    service = {"name": "Apache2.4", "account_sid": "S-1-5-20"}
    assert prerequisites.apache_reader_sids(service, [], None, ["S-1-5-21-9"]) == ("S-1-5-20", "S-1-5-21-9")
    httpd = [{"owner_sid": "S-1-5-21-7"}]
    desktop = {"owner_sid": "S-1-5-21-8", "session": 1}
    assert prerequisites.apache_reader_sids(None, httpd, desktop) == ("S-1-5-21-7", "S-1-5-21-8")
    # A laragon.exe of session 0 (started by a service or an SSH session) is not a desktop.
    assert prerequisites.laragon_desktop_user([{"owner_sid": "S-1-5-18", "session": 0}]) is None


# --- 5. vhosts that any Apache of the shared sites-enabled folder accepts ----------------------------


APACHE_MODULES = "/usr/lib/apache2/modules"


def test_5_vhost_is_accepted_by_an_apache_without_mod_wsgi_and_mod_ssl(monkeypatch, tmp_path):
    """The rendered Laragon vhost, read by a real Apache that loads neither mod_wsgi nor mod_ssl (another
    Laragon Apache version, or Laragon's SSL off): ``apache2 -t`` accepts it."""
    assert Path("/usr/sbin/apache2").exists(), "apache2 is installed by scripts/setup"
    planned, _ = dry_run(monkeypatch, laragon_machine(), {"impots_windows_layout": "laragon"})
    vhost = by_name(planned)["Vhost flask-impots-withpgres"][0].src.getvalue().decode()
    assert "<IfModule wsgi_module>" in vhost and "<IfModule ssl_module>" in vhost
    (tmp_path / "site.conf").write_text(vhost.replace("\r\n", "\n"))
    # Relative to ServerRoot here, the Windows folders the vhost names (its logs, its document root).
    for folder in ("logs", f"{LARAGON_APACHE}/logs", "C:/impots/www", "C:/impots/app"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    modules = ["mpm_event", "authz_core", "alias"]
    conf = tmp_path / "httpd.conf"
    conf.write_text(
        f'ServerRoot "{tmp_path}"\nServerName localhost\nPidFile "{tmp_path}/httpd.pid"\n'
        f'ErrorLog "{tmp_path}/logs/error.log"\nListen 127.0.0.1:65080\n'
        + "".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so\n" for m in modules)
        + f'Include "{tmp_path}/site.conf"\n'
    )
    result = subprocess.run(
        ["/usr/sbin/apache2", "-t", "-f", str(conf)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Syntax OK" in result.stderr
    # The same vhost without its guards is refused: the test can fail.
    unguarded = re.sub(r"^\s*</?IfModule[^>]*>\n", "", vhost.replace("\r\n", "\n"), flags=re.MULTILINE)
    (tmp_path / "site.conf").write_text(unguarded)
    result = subprocess.run(
        ["/usr/sbin/apache2", "-t", "-f", str(conf)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0 and "SSLEngine" in result.stderr


# --- 6. the local CA on both layouts, trusted on the Windows host unless turned off ------------------


def test_6_laragon_uses_the_local_ca_and_trusts_it(monkeypatch):
    planned, _ = dry_run(monkeypatch, laragon_machine(), {"impots_windows_layout": "laragon"})
    steps = by_name(planned)
    body = steps["Vhost flask-impots-withmysql"][0].src.getvalue().decode()
    assert 'SSLCertificateFile "C:/impots/tls/server.pem"' in body and "laragon.crt" not in body
    trust = steps["Local CA trusted by Windows (LocalMachine Root)"]
    assert trust[0].dest == "C:/impots/tls/impots-ca.pem" and trust[0].src.endswith("lab-pc/impots-ca.pem")
    assert "Cert:\\LocalMachine\\Root" in trust[1].get_raw_value()


def test_6_trust_can_be_turned_off(monkeypatch):
    data = {"impots_windows_layout": "apache-lounge", "impots_windows_trust_ca": False}
    planned, _ = dry_run(monkeypatch, apache_lounge_machine(), data)
    assert "Local CA trusted by Windows (LocalMachine Root)" not in by_name(planned)


# --- 7. build prerequisites: the SDK, every file mod_wsgi links, spaces ---------------------------------


def test_7_missing_sdk_and_libs(monkeypatch):
    windows = laragon_machine(msvc={**MSVC, "sdks": []})
    windows.fact(
        facts.ApacheInstallation,
        apache(LARAGON_APACHE, missing=("include/apr.h", "lib/libapriconv-1.lib")),
        root=LARAGON_APACHE,
    )
    message = plan_error(monkeypatch, windows)
    assert "@winssh/lab-pc: no Windows 10/11 SDK with x64 libraries" in message
    assert f"the Apache tree at {LARAGON_APACHE} lacks include/apr.h, lib/libapriconv-1.lib" in message


def test_7_spaces_in_the_apache_root(monkeypatch):
    windows = apache_lounge_machine()
    root = "C:/Program Files/Apache24"
    windows.fact(facts.ApacheInstallation, apache(root), root=root)
    windows.fact(facts.FileText, "Listen 80\r\n", path=f"{root}/conf/httpd.conf")
    message = plan_error(
        monkeypatch, windows, {"impots_windows_layout": "apache-lounge", "impots_apache_root": root}
    )
    assert f"@winssh/lab-pc: the Apache folder {root} has a space in its path" in message


# --- 9. Laragon without Version=: the Apache that runs -------------------------------------------------


def test_9_laragon_ini_without_version_picks_the_running_apache(monkeypatch):
    windows = laragon_machine()
    windows.fact(
        facts.LaragonApache,
        {
            "versions": ["httpd-2.4.62-240904-win64-VS17", "httpd-2.4.54-win64-VS16"],
            "selected": None,
            "running": [OLDER_APACHE.replace("/", "\\") + "\\bin\\httpd.exe"],
        },
        laragon_root="C:/laragon",
    )
    windows.fact(facts.ApacheInstallation, apache(OLDER_APACHE), root=OLDER_APACHE)
    windows.fact(facts.FileText, "Listen 80\r\nListen 443\r\n", path=f"{OLDER_APACHE}/conf/httpd.conf")
    planned, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    assert f"$apache = '{OLDER_APACHE}'" in mod_wsgi_script(planned)
    versions = ["httpd-2.4.54-win64-VS16", "httpd-2.4.62-240904-win64-VS17"]
    assert laragon_apache_folder("C:/laragon", versions, None) == "httpd-2.4.62-240904-win64-VS17"


# --- 10 is in test_win_operations (restart checks) and test_win_facts (.\name) ---------------------------
# --- 11. a non-elevated session --------------------------------------------------------------------------


def test_11_non_elevated_session_is_refused(monkeypatch):
    windows = laragon_machine()
    windows.fact(facts.CurrentUser, {"name": "LAB-PC\\prof", "sid": ADMIN_SID, "admin": False})
    message = plan_error(monkeypatch, windows)
    assert (
        "@winssh/lab-pc: the SSH session of LAB-PC\\prof is not elevated (not in Administrators)" in message
    )


# --- 12. what the docs and the block say about WSGIPythonHome and the default shell -----------------------


def test_12_docs_and_block_tell_the_truth():
    docs = (REPO / "docs" / "windows.md").read_text()
    block = (REPO / "templates" / "windows" / "httpd-block.conf.j2").read_text()
    assert "PowerShell as the default shell\nworks" not in docs and "default shell\nworks" not in docs
    assert "No module named 'encodings'" not in block and 'WSGIPythonHome "' not in block
    assert "only adds <home>/Lib/site-packages" in docs.replace("\n", " ").replace("`", "")


def test_tools_for_the_review_are_installed():
    """The grammar and actionlint the Windows tests run are pinned dev requirements (not optional)."""
    dev = (REPO / "requirements" / "dev.txt").read_text()
    assert re.search(r"^tree-sitter-powershell==", dev, re.MULTILINE)
    assert shutil.which("actionlint") or Path(REPO / ".venv/bin/actionlint").exists()
