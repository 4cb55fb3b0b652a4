"""The Windows deploy applies the same plan as Linux (provisioning/plan.py): for the same settings, the
same folders and access, impots.json, secrets to generate, vhost text (apart from the platform parts)
and TLS names; the reload rule watches the platform's venv markers and the data stamp the seed touches."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from cryptography import x509
from pyinfra.api import FileUploadCommand, StringCommand
from pyinfra.api.util import get_kwargs_str
from test_win_dry_run import PG_ADMIN_PASSWORD
from win_fakes import MEMURAI_PASSWORD, apache_lounge_machine, dry_run, laragon_machine
from win_optest import run_op

import provisioning.plan as plan_module
from provisioning.linux.platforms import DEBIAN, RHEL
from provisioning.plan import Access, host_plan
from provisioning.settings import parse_settings
from provisioning.tls import local_ca_files
from provisioning.windows import databases
from provisioning.windows.platforms import apache_lounge_platform, laragon_platform

pytestmark = pytest.mark.usefixtures("clean_environment")

HOST = "@winssh/lab-pc"
SITE_NAMES = ["flask-impots-withmysql", "flask-impots-withpgres", "date-time-server"]


def by_name(planned) -> dict:
    return {name: commands for name, commands, _ in planned}


def scripts(commands) -> list[str]:
    return [c.get_raw_value() for c in commands if isinstance(c, StringCommand)]


def without_platform_parts(vhost: str) -> str:
    """A vhost without what the platform record decides: log folder, module guards, daemon mode."""
    text = vhost.replace("\r\n", "\n")
    text = re.sub(r'^([ \t]*(?:ErrorLog|CustomLog) ")[^"]*/', r"\1<logs>/", text, flags=re.MULTILINE)
    text = re.sub(r"^[ \t]*</?IfModule[^>]*>\n", "", text, flags=re.MULTILINE)
    return re.sub(r"^[ \t]*WSGI(DaemonProcess|ProcessGroup) .*\n", "", text, flags=re.MULTILINE)


def dns_names(pem_path: str) -> list[str]:
    cert = x509.load_pem_x509_certificate(open(pem_path, "rb").read())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sorted(names.get_values_for_type(x509.DNSName))


def windows_platform(layout: str):
    if layout == "laragon":
        return laragon_platform("C:/laragon", "C:/laragon/bin/apache/httpd-2.4.62-240904-win64-VS17")
    return apache_lounge_platform(None)


@pytest.mark.parametrize("layout", ["laragon", "apache-lounge"])
def test_windows_deploy_applies_the_decisions_linux_gets(monkeypatch, layout):
    data = {"impots_windows_layout": layout}
    monkeypatch.setenv("IMPOTS_PGRES_ADMIN_PASSWORD", PG_ADMIN_PASSWORD)
    windows = laragon_machine() if layout == "laragon" else apache_lounge_machine()
    steps = by_name(dry_run(monkeypatch, windows, data)[0])
    settings = parse_settings(HOST, data, environ={}, default_os="windows")
    linux = host_plan(HOST, settings, DEBIAN, redis_auth=True)

    # Folders: the same folders with the same access (the state folder is the platform's), all made
    # by the Windows deploy, and Apache writes exactly the one Linux lets it write.
    state_dir = "C:/impots/state"
    assert [(f.path.replace(linux.paths.state_dir, state_dir), f.access) for f in linux.folders] == [
        (f.path, f.access) for f in host_plan(HOST, settings, windows_platform(layout)).folders
    ]
    made = [name.removeprefix("Folder ") for name in steps if name.startswith("Folder C:/impots")]
    assert ["C:/impots", *made] == [f.path.replace(linux.paths.state_dir, state_dir) for f in linux.folders]
    writable = [f.path for f in linux.folders if f.access is Access.APACHE_WRITE]
    assert [name.removeprefix("Writable by Apache: ") for name in steps if name.startswith("Writable")] == (
        writable
    )
    if layout == "laragon":  # the desktop user runs Apache (Apache Lounge: SYSTEM, already full)
        assert ":(OI)(CI)M'" in scripts(steps[f"Writable by Apache: {writable[0]}"])[0]

    # impots.json: the same text; the secrets generated on the host: the same keys.
    config = steps["Instance configuration impots.json"][0]
    assert config.dest == linux.paths.instance_config
    assert config.src.getvalue().decode() == linux.instance_config
    # Redis: Laragon's is managed, its password generated as on Linux; Apache Lounge's (Memurai) is not,
    # its password is the one given (IMPOTS_REDIS_PASSWORD), uploaded like every given secret.
    generate = re.search(r"^\$generate = (.*)$", scripts(steps["Secrets file (ACL)"])[0], re.MULTILINE)
    assert linux.secrets.generate == ("secret_key", "mysql_password", "pgres_password", "redis_password")
    assert dict(linux.secrets.given) == {}
    given = json.loads(steps["Secrets file (ACL)"][0].src.getvalue())
    if layout == "laragon":
        assert generate.group(1) == "@(" + ", ".join(f"'{key}'" for key in linux.secrets.generate) + ")"
        assert given == {}
    else:
        assert generate.group(1) == "@('secret_key', 'mysql_password', 'pgres_password')"
        assert given == {"redis_password": MEMURAI_PASSWORD}

    # One vhost template: the same text apart from the platform parts.
    for site in linux.sites:
        body = steps[f"Vhost {site.site.name}"][0].src.getvalue().decode()
        assert "\r\n" in body and without_platform_parts(body) == without_platform_parts(site.vhost)
        assert "WSGIDaemonProcess" in site.vhost and "WSGIDaemonProcess" not in body

    # One TLS recipe: the same controller files, naming every site, signed by the client CA.
    uploads = {cmd.dest: cmd.src for name in steps if name.startswith("TLS file") for cmd in steps[name]}
    assert uploads == {dest: src for src, dest, _ in linux.tls.uploads}
    assert dns_names(uploads["C:/impots/tls/server.pem"]) == sorted(SITE_NAMES)
    trust = steps["Local CA trusted by Windows (LocalMachine Root)"][0]
    assert isinstance(trust, FileUploadCommand) and trust.src == linux.tls.client_ca
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", linux.tls.client_ca, uploads["C:/impots/tls/server.pem"]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr


def test_reload_watch_has_each_platform_s_venv_markers_and_the_data_stamp():
    settings = parse_settings(HOST, {}, environ={}, default_os="windows")
    for platform in (laragon_platform("C:/laragon", "C:/laragon/bin/apache/x"), apache_lounge_platform(None)):
        plan = host_plan(HOST, settings, platform)
        assert plan.reload_watch[1:4] == (
            "C:/impots/venv/pyvenv.cfg",
            "C:/impots/venv/impots-requirements.stamp",
            "C:/impots/venv/impots-mod_wsgi.stamp",
        )
        assert "C:/impots/state/data-seeded.stamp" == plan.paths.data_stamp
        assert plan.paths.data_stamp in plan.reload_watch
        assert ".impots-requirements.sha256" not in " ".join(plan.reload_watch)
    for platform in (DEBIAN, RHEL):
        plan = host_plan(HOST, settings, platform)
        assert plan.reload_watch[1] == "C:/impots/venv/.impots-requirements.sha256"
        assert "/var/lib/impots-provisioning/data-seeded.stamp" in plan.reload_watch
        assert not any(path.endswith(".stamp") and "/venv/" in path for path in plan.reload_watch)


SEED_PATHS = {
    "python": "C:/impots/venv/Scripts/python.exe",
    "app": "C:/impots/app",
    "instance": "C:/impots/instance",
}
SEEDER_SECRETS = "C:/impots/state/seeder-secrets.json"


def test_repaired_data_touches_the_data_stamp():
    key_mysql = get_kwargs_str({"dbms": "mysql", **SEED_PATHS})
    stamp = "C:/impots/state/data-seeded.stamp"
    stale = {"databases.SeedStatus": {key_mysql: {"code": 3, "stderr": ""}}}
    commands, _ = run_op(
        databases.database_seeded,
        stale,
        dbms=["mysql"],
        touch=stamp,
        seeder_secrets=SEEDER_SECRETS,
        **SEED_PATHS,
    )
    assert len(commands) == 2 and "-m impots.db.seed mysql" in commands[0]
    assert commands[1] == (
        "$seeded = 'C:\\impots\\state\\data-seeded.stamp'\n"
        "$null = [IO.Directory]::CreateDirectory((Split-Path -Parent $seeded))\n"
        "[IO.File]::WriteAllText($seeded, [DateTime]::UtcNow.ToString('o'))"
    )
    fresh = {"databases.SeedStatus": {key_mysql: {"code": databases.SEED_UP_TO_DATE, "stderr": ""}}}
    commands, noop = run_op(
        databases.database_seeded,
        fresh,
        dbms=["mysql"],
        touch=stamp,
        seeder_secrets=SEEDER_SECRETS,
        **SEED_PATHS,
    )
    assert commands == [] and noop == "mysql schema and data are already up to date"


def test_the_local_ca_recipe_names_exactly_the_sites_and_follows_them(tmp_path):
    """What the former Windows-only recipe was relied on for: a CA-signed certificate naming exactly
    the sites, re-used by every run (idempotent uploads), re-issued when the sites change."""
    first = local_ca_files(HOST, SITE_NAMES, tmp_path)
    again = local_ca_files(HOST, list(reversed(SITE_NAMES)), tmp_path)
    assert again == first and dns_names(first.cert) == sorted(SITE_NAMES)
    assert open(first.cert, "rb").read() == open(again.cert, "rb").read()
    assert (tmp_path / "local-ca" / "ca.key").stat().st_mode & 0o077 == 0
    fewer = local_ca_files(HOST, SITE_NAMES[:1], tmp_path)
    assert fewer.cert != first.cert and dns_names(fewer.cert) == SITE_NAMES[:1]
    assert fewer.client_ca == str(tmp_path / "@winssh_lab-pc" / "impots-ca.pem") == first.client_ca
    assert open(fewer.client_ca).read() == open(first.ca).read()
    assert plan_module.ARTIFACTS_DIR != tmp_path  # the deploy's own artifacts are untouched
