"""A whole dry run of a Windows host through the real @winssh connector, its transport replaced by
canned PowerShell output (win_fakes): every operation of deploy_windows is planned, for Laragon and for
Apache Lounge, with the commands a bare machine would get."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from ps_lint import lint
from pyinfra.api import FileUploadCommand, StringCommand
from win_apache_fakes import converge_apache
from win_fakes import (
    ADMIN_SID,
    DESKTOP_SID,
    FakeWindows,
    accounts_made,
    apache_lounge_machine,
    dry_run,
    laragon_machine,
    redis_listener,
)

from provisioning.windows import databases, facts, redis
from provisioning.windows.tls import certificate_thumbprint

LARAGON_OPS = [
    "Deploy lock (one run at a time on this host)",
    "Install root",
    "Install root: Administrators, SYSTEM and Apache only",
    "Folder C:/impots/bin",
    "Folder C:/impots/releases",
    "Folder C:/impots/www",
    "Folder C:/impots/instance",
    "Folder C:/impots/instance/logs",
    "Writable by Apache: C:/impots/instance/logs",
    "Folder C:/impots/tls",
    "Folder C:/impots/state",
    "Virtual environment",
    "App requirements",
    "mod_wsgi built for this Apache",
    "App release",  # + the artifact's short sha
    "Instance configuration impots.json",
    "Secrets file (ACL)",
    "Folder for Redis (configuration, sessions snapshot)",
    "Redis folder: Administrators and SYSTEM only",
    "Redis: the app's password, loopback, memory limit (Laragon)",
    "MariaDB/MySQL database and user",
    "PostgreSQL database and role",
    "Schema and data (impots.db.seed)",
    "Apache configuration snapshot",
    "TLS file C:/impots/tls/server.pem",
    "TLS file C:/impots/tls/server.key",
    "TLS file C:/impots/tls/ca.pem",
    "Local CA trusted by Windows (LocalMachine Root)",
    "Vhost flask-impots-withmysql",
    "Vhost flask-impots-withpgres",
    "Vhost date-time-server",
    "httpd.conf: mod_wsgi block",
    "Hosts file block",
    "Apache: configuration test, restart, smoke check",
    "Deploy lock released",
]
# Apache Lounge: Redis (Memurai) already runs with the password given (nothing of Laragon's to manage);
# the PostgreSQL superuser's password is given (IMPOTS_PGRES_ADMIN_PASSWORD), so it passes through an
# Administrators-only folder.
LOUNGE_OPS = (
    LARAGON_OPS[:17]
    + [
        "Folder for database administrator passwords",
        "Database administrator folder: Administrators and SYSTEM only",
    ]
    + LARAGON_OPS[20:]
)
REDIS_OP = "Redis: the app's password, loopback, memory limit (Laragon)"
REDIS_CONFIG = {
    "config": "C:/impots/state/redis/redis.conf",
    "secrets": "C:/impots/instance/secrets.json",
    "template": redis.config_template("C:/impots/state/redis", 64, "volatile-lru"),
    "maxmemory_mb": 64,
    "policy": "volatile-lru",
}
PG_ADMIN_PASSWORD = "Postgres-Admin-Secret-7"
SEED_PATHS = {
    "python": "C:/impots/venv/Scripts/python.exe",
    "app": "C:/impots/app",
    "instance": "C:/impots/instance",
}


pytestmark = pytest.mark.usefixtures("clean_environment")


def names(planned):
    return [name.split(" 0")[0] if name.startswith("App release") else name for name, _, _ in planned]


def scripts(commands):
    return [c.get_raw_value() for c in commands if isinstance(c, StringCommand)]


def test_laragon_full_plan(monkeypatch):
    windows = laragon_machine()
    planned, client = dry_run(monkeypatch, windows, {"impots_windows_layout": "laragon"})
    assert [n if not n.startswith("App release ") else "App release" for n in names(planned)] == LARAGON_OPS
    # A bare machine: every operation has something to do (no stamp yet: Apache is restarted), but the
    # deploy lock, which is never a change.
    assert [name for name, _, change in planned if not change] == [LARAGON_OPS[0], LARAGON_OPS[-1]]
    by_name = {name: commands for name, commands, _ in planned}

    # Every command line was a PowerShell -EncodedCommand, never a POSIX shell.
    assert client.command_lines
    assert all(
        line.startswith("powershell -NoProfile -NonInteractive -EncodedCommand ")
        for line in client.command_lines
    )
    assert not any("sh -c" in script or "sudo" in script for script in windows.seen)

    vhost = by_name["Vhost flask-impots-withmysql"]
    assert len(vhost) == 1 and isinstance(vhost[0], FileUploadCommand)
    assert vhost[0].dest == "C:/laragon/etc/apache2/sites-enabled/flask-impots-withmysql.conf"
    body = vhost[0].src.getvalue().decode()
    assert 'SSLCertificateFile "C:/impots/tls/server.pem"' in body  # the local CA's, not laragon.crt
    assert "\r\n" in body and "\n" not in body.replace("\r\n", "")

    block = by_name["httpd.conf: mod_wsgi block"]
    text = block[0].src.getvalue().decode()
    assert text.startswith('Define ROOT "C:/laragon/www"\r\n') and "LoadModule wsgi_module" in text
    # Laragon already listens on 443 (its httpd-ssl.conf): no second Listen.
    assert "Listen 443" not in text
    assert block[0].dest == "C:/laragon/bin/apache/httpd-2.4.62-240904-win64-VS17/conf/httpd.conf.impots-new"

    restart = scripts(by_name["Apache: configuration test, restart, smoke check"])[0]
    # Point 4: started as Laragon's desktop user (the facts' owner of laragon.exe), never through WMI.
    assert "$desktopuser = 'LAB-PC\\eleve'\n" in restart and "Start-ScheduledTask -TaskName $task" in restart
    assert "Win32_Process -MethodName Create" not in restart and "Restart-Service" not in restart
    mod_wsgi = scripts(by_name["mod_wsgi built for this Apache"])[0]
    assert "$apache = 'C:/laragon/bin/apache/httpd-2.4.62-240904-win64-VS17'" in mod_wsgi
    acl = scripts(by_name["Install root: Administrators, SYSTEM and Apache only"])[0]
    # Point 4: the account that actually runs Laragon's httpd reads the app, not the SSH account.
    assert f"*{DESKTOP_SID}:(OI)(CI)RX" in acl and ADMIN_SID not in acl
    venv = scripts(by_name["Virtual environment"])[0]
    assert "$python = 'C:\\Program Files\\Python311\\python.exe'" in venv

    secrets = by_name["Secrets file (ACL)"]
    assert json.loads(secrets[0].src.getvalue()) == {}  # nothing given: everything generated on the host
    generate = "$generate = @('secret_key', 'mysql_password', 'pgres_password', 'redis_password')"
    assert generate in secrets[1].get_raw_value()

    # Databases: Laragon's Redis given its private folder, our file and started (it was down), then both
    # accounts as root/postgres without a password (no upload), then the seed of both DBMS -- all after
    # the venv, app and secrets file (whose redis_password the Redis script reads on the host).
    order = names(planned)
    assert order.index("Secrets file (ACL)") < order.index(REDIS_OP)
    assert order.index("Schema and data (impots.db.seed)") < order.index("Vhost flask-impots-withmysql")
    folder_acl = scripts(by_name["Redis folder: Administrators and SYSTEM only"])
    assert folder_acl[0].startswith(
        "$p = 'C:\\impots\\state\\redis'\n$grants = @('*S-1-5-18:(OI)(CI)F', '*S-1-5-32-544:(OI)(CI)F')\n"
    )
    redis_script = scripts(by_name[REDIS_OP])
    assert len(redis_script) == 1
    assert "$server = 'C:\\laragon\\bin\\redis\\redis-x64-5.0.14.1\\redis-server.exe'\n" in redis_script[0]
    assert "$laragonredis = 'C:\\laragon\\bin\\redis\\'\n" in redis_script[0]
    mysql = by_name["MariaDB/MySQL database and user"]
    assert len(mysql) == 1 and isinstance(mysql[0], StringCommand)
    assert "$client = 'C:\\laragon\\bin\\mysql\\mysql-8.0.30-winx64\\bin\\mysql.exe'\n" in scripts(mysql)[0]
    assert "\n$adminfile = ''\n" in scripts(mysql)[0]
    postgres = scripts(by_name["PostgreSQL database and role"])
    assert len(postgres) == 1
    assert "$client = 'C:\\Program Files\\PostgreSQL\\16\\bin\\psql.exe'\n" in postgres[0]
    assert "-U postgres -d postgres" in postgres[0]
    seeds = scripts(by_name["Schema and data (impots.db.seed)"])
    # After seeding, the data stamp the Apache transaction watches (repaired data needs a restart).
    assert assigned(seeds[-1], "seeded") == "C:\\impots\\state\\data-seeded.stamp"
    assert "[IO.File]::WriteAllText($seeded" in seeds.pop()
    assert [assigned(seed, "arguments") for seed in seeds] == [
        "-m impots.db.seed mysql",
        "-m impots.db.seed pgres",
    ]
    # The bare machine's facts were asked: the clients, the ports, Redis, and the app's own seed check.
    asked = "\n".join(windows.seen)
    assert "$endpoints = @('127.0.0.1:3306', '127.0.0.1:5432')" in asked
    assert redis.RedisListener().command(endpoint="127.0.0.1:6379") in windows.seen
    assert "$arguments = '-m impots.db.seed pgres --check'" in asked


def test_apache_lounge_full_plan(monkeypatch):
    windows = apache_lounge_machine()
    monkeypatch.setenv("IMPOTS_PGRES_ADMIN_PASSWORD", PG_ADMIN_PASSWORD)
    planned, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": "apache-lounge"})
    assert [n if not n.startswith("App release ") else "App release" for n in names(planned)] == LOUNGE_OPS
    by_name = {name: commands for name, commands, _ in planned}
    assert by_name["Vhost date-time-server"][0].dest == "C:/Apache24/conf/extra/impots-date-time-server.conf"
    text = by_name["httpd.conf: mod_wsgi block"][0].src.getvalue().decode()
    assert 'Include "C:/Apache24/conf/extra/impots-flask-impots-withmysql.conf"\r\n' in text
    assert "Listen 127.0.0.1:443\r\n" in text  # Apache Lounge's httpd.conf has no active SSL
    restart = scripts(by_name["Apache: configuration test, restart, smoke check"])[0]
    assert "$service = 'Apache2.4'\nfunction Start-Apache { Restart-Service -Name $service }" in restart
    # Service as LocalSystem: SYSTEM reads, no extra account in the ACLs.
    acl = scripts(by_name["Install root: Administrators, SYSTEM and Apache only"])[0]
    assert "$grants = @('*S-1-5-18:(OI)(CI)F', '*S-1-5-32-544:(OI)(CI)F')" in acl
    uploads = by_name["TLS file C:/impots/tls/server.pem"]
    assert uploads[0].src.endswith("/server.pem") and "/local-ca/certs/" in uploads[0].src

    # The superuser's password travels over SFTP into the Administrators-only folder, never in a script.
    admin_acl = scripts(by_name["Database administrator folder: Administrators and SYSTEM only"])[0]
    assert admin_acl.startswith(
        "$p = 'C:\\impots\\admin'\n$grants = @('*S-1-5-18:(OI)(CI)F', '*S-1-5-32-544:(OI)(CI)F')"
    )
    postgres = by_name["PostgreSQL database and role"]
    assert isinstance(postgres[0], FileUploadCommand)
    assert postgres[0].dest == "C:/impots/admin/pgres-admin.json"
    assert json.loads(postgres[0].src.getvalue()) == {"password": PG_ADMIN_PASSWORD}
    assert "$adminfile = 'C:\\impots\\admin\\pgres-admin.json'" in postgres[1].get_raw_value()
    mysql = by_name["MariaDB/MySQL database and user"]
    assert len(mysql) == 1  # root of MariaDB without a password: nothing to upload
    assert "$client = 'C:\\Program Files\\MariaDB 11.4\\bin\\mysql.exe'" in mysql[0].get_raw_value()
    every_script = windows.seen + [s for _, commands, _ in planned for s in scripts(commands)]
    assert not any(PG_ADMIN_PASSWORD in script for script in every_script)


@pytest.mark.parametrize("layout", ["laragon", "apache-lounge"])
def test_second_run_on_converged_machine_is_clean(monkeypatch, layout):
    """With the facts a converged machine reports, every operation is a no-op and Apache is not restarted."""
    windows = laragon_machine() if layout == "laragon" else apache_lounge_machine()
    monkeypatch.setenv("IMPOTS_PGRES_ADMIN_PASSWORD", PG_ADMIN_PASSWORD)
    first, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": layout})
    converge(windows, first)
    converge_apache(windows, first)
    windows.unknown_facts.clear()
    second, _ = dry_run(monkeypatch, windows, {"impots_windows_layout": layout})
    changing = [name for name, commands, change in second if change]
    # Apache runs and nothing is newer than the stamp: no restart either.
    assert changing == []
    assert windows.unknown_facts == []


def assigned(script: str, variable: str) -> str:
    match = re.search(rf"^\${variable} = '(.*)'$", script, re.MULTILINE)
    assert match, variable
    return match.group(1).replace("''", "'")


def converge(windows: FakeWindows, planned) -> None:
    """Teach the fake machine what the planned uploads and scripts leave behind."""
    given: dict = {}  # the secrets uploaded for the secrets file (e.g. a Redis password given)
    for _name, commands, _ in planned:
        for command in commands:
            if isinstance(command, FileUploadCommand):
                if hasattr(command.src, "getvalue"):
                    data = command.src.getvalue()
                else:
                    with open(command.src, "rb") as source:
                        data = source.read()
                if command.dest.endswith("impots-ca.pem"):
                    windows.fact(
                        facts.CertificateTrusted, True, thumbprint=certificate_thumbprint(command.src)
                    )
                if command.dest.endswith("secrets.json.impots-new"):
                    given = json.loads(data)
                if command.dest.endswith(".impots-new") and "secrets" not in command.dest:
                    windows.fact(facts.FileText, data.decode(), path=command.dest[: -len(".impots-new")])
                elif not command.dest.endswith((".impots-new", ".tar.gz", "impots-requirements.txt")):
                    windows.fact(facts.FileHash, hashlib.sha256(data).hexdigest(), path=command.dest)
                continue
            script = command.get_raw_value()
            if "[IO.Directory]::CreateDirectory($p)" in script:
                windows.fact(facts.Directory, True, path=assigned(script, "p").replace("\\", "/"))
            if "icacls.exe $p" in script:
                sids = sorted({grant[1:].split(":")[0] for grant in re.findall(r"'(\*S-[^']+)'", script)})
                windows.fact(
                    facts.FileAcl,
                    {"protected": True, "sids": sids},
                    path=assigned(script, "p").replace("\\", "/"),
                )
            if "-m venv $venv" in script:
                windows.fact(facts.VenvHome, "C:\\Program Files\\Python311", venv="C:/impots/venv")
            if "$digest = " in script:
                windows.fact(
                    facts.FileText,
                    assigned(script, "digest"),
                    path=assigned(script, "stamp").replace("\\", "/"),
                )
            if "$wanted = " in script:
                windows.fact(
                    facts.FileText,
                    assigned(script, "wanted"),
                    path=assigned(script, "stamp").replace("\\", "/"),
                )
            if "New-Item -ItemType Junction -Path $app" in script:
                release = assigned(script, "release")
                windows.fact(facts.LinkTarget, {"type": "Junction", "target": release}, path="C:/impots/app")
            if "Win32_Process -MethodName Create" in script and "Get-RedisState" in script:
                # Laragon's Redis reads our file and takes the password; it listens on 6379.
                converged = {"password": True, "config": True, "server": "ours"}
                windows.fact(redis.RedisConfigState, converged, **REDIS_CONFIG)
                redis_listener(windows, "auth", assigned(script, "server"))
            if "$seedersecrets = " in script and "\n$seeder = '" in script:
                accounts_made(windows, script)
            if "-m impots.db.seed" in script:
                # After the accounts and the seed, the app's --check finds everything up to date.
                dbms = assigned(script, "arguments").split()[2]
                windows.fact(databases.SeedStatus, {"code": 0, "stderr": ""}, dbms=dbms, **SEED_PATHS)
            if "$generate = " in script:
                target = assigned(script, "target").replace("\\", "/")
                keys = re.findall(r"'([a-z_]+)'", script.split("$generate = ")[1].split("\n")[0])
                digests = {key: "0" * 64 for key in keys}
                digests |= {key: hashlib.sha256(value.encode()).hexdigest() for key, value in given.items()}
                windows.fact(facts.JsonKeyDigests, digests, path=target)
                sids = sorted({grant[1:].split(":")[0] for grant in re.findall(r"'(\*S-[^']+)'", script)})
                windows.fact(facts.FileAcl, {"protected": True, "sids": sids}, path=target)


def test_every_script_sent_or_planned_is_plausible_powershell(monkeypatch):
    for windows, layout in ((laragon_machine(), "laragon"), (apache_lounge_machine(), "apache-lounge")):
        planned, client = dry_run(monkeypatch, windows, {"impots_windows_layout": layout})
        for script in windows.seen + [s for _, commands, _ in planned for s in scripts(commands)]:
            assert lint(script) == [], script
        assert all(len(line) <= 8191 for line in client.command_lines)
