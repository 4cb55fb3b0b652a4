"""Issue 8 #10b: each site runs as its own system user and can read only its own secrets and logs.

On the deployed machine: the daemons' users (ps), what each user can read (tried as that user with
runuser), the JSON flow on both database sites, and the move from the shared instance folder of the
layout before site users, keeping every generated value, then a clean rerun.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from deploy_harness import DEFAULT_INVENTORY, IMPOTS_ALIAS, IMPOTS_SITES, PREFIX_URL, run_deploy
from impots_client import ImpotsClient
from test_deploy_json_flow import run_main3_flow

from provisioning.site_users import site_user

pytestmark = pytest.mark.deploy

ROOT = Path("/opt/impots")
INSTANCE = ROOT / "instance"
STORE = INSTANCE / "secrets.json"
SITES = (*IMPOTS_SITES, "date-time-server")
# Key in the site's own secrets.json -> key in the deploy's store: the Flask key and the Redis password
# are the site's own (a site can neither sign nor read another's sessions).
SITE_KEYS = {
    site: {
        "secret_key": f"secret_key@{site}",
        f"{dbms}_password": f"{dbms}_password",
        "redis_password": f"redis_password@{site}",
    }
    for site, dbms in (("flask-impots-withmysql", "mysql"), ("flask-impots-withpgres", "pgres"))
}


def can_read(user: str, path: Path) -> bool:
    """``user`` opens the file (or lists the folder): tried for real, as that user."""
    command = ["ls", str(path)] if path.is_dir() else ["head", "-c1", str(path)]
    result = subprocess.run(
        ["runuser", "-u", user, "--", *command], capture_output=True, cwd="/", check=False
    )
    return result.returncode == 0


def daemon_users() -> dict[str, set[str]]:
    """Site -> the users its mod_wsgi daemons run as. The process title is cut ("(wsgi:flask-impot"),
    so the site is told by the daemon's working folder (home= <instance>/<site>), else by that title."""
    listing = subprocess.run(["ps", "-eo", "pid=,uid=,args="], capture_output=True, text=True, check=True)
    users: dict[str, set[str]] = {}
    for line in listing.stdout.splitlines():
        match = re.match(r"\s*(\d+)\s+(\d+)\s+\(wsgi:([^) ]+)", line)
        if not match:
            continue
        try:
            site = Path(os.readlink(f"/proc/{match.group(1)}/cwd")).name
        except OSError:
            continue  # gone meanwhile
        if site not in SITES:  # the layout before site users: no home=, the title only
            site = next(name for name in SITES if name.startswith(match.group(3)))
        users.setdefault(site, set()).add(pwd.getpwuid(int(match.group(2))).pw_name)
    return users


def test_each_sites_daemons_run_as_its_user(https: requests.Session) -> None:
    for site in IMPOTS_SITES:  # a request makes sure the daemons are up
        https.get(f"https://{site}{IMPOTS_ALIAS}{PREFIX_URL}/init-session/json", timeout=30)
    users = daemon_users()
    assert users == {site: {site_user(site)} for site in SITES}, users


def test_a_site_reads_only_its_own_secrets_and_logs(deployed) -> None:
    for site in SITES:
        user = site_user(site)
        for other in SITES:
            folder = INSTANCE / other
            assert can_read(user, folder / "logs") == (other == site), f"{user} on {other}'s logs"
            if other in SITE_KEYS:
                assert can_read(user, folder / "secrets.json") == (other == site), f"{user} on {other}"
        assert not can_read(user, STORE), f"{user} reads the deploy's store of every secret"


def test_apache_user_reads_no_secret_and_no_site_log(deployed) -> None:
    for site in SITES:
        assert not can_read("www-data", INSTANCE / site / "logs"), site
        if site in SITE_KEYS:
            assert not can_read("www-data", INSTANCE / site / "secrets.json"), site
    assert not can_read("www-data", STORE)


def test_each_site_holds_only_the_secrets_it_uses(deployed) -> None:
    store = json.loads(STORE.read_text())
    for site, keys in SITE_KEYS.items():
        own = json.loads((INSTANCE / site / "secrets.json").read_text())
        assert own == {key: store[source] for key, source in keys.items()}, f"{site}: {sorted(own)}"
    assert not (INSTANCE / "date-time-server" / "secrets.json").exists()
    mysql, pgres = (json.loads((INSTANCE / site / "secrets.json").read_text()) for site in SITE_KEYS)
    assert mysql["secret_key"] != pgres["secret_key"] and mysql["redis_password"] != pgres["redis_password"]
    assert store["redis_password"] not in (mysql["redis_password"], pgres["redis_password"]), "the admin's"


@pytest.mark.parametrize("site", IMPOTS_SITES)
def test_json_flow_writes_the_sites_own_log(https: requests.Session, site: str) -> None:
    run_main3_flow(ImpotsClient(https, f"https://{site}{IMPOTS_ALIAS}{PREFIX_URL}", "json"))
    logs = list((INSTANCE / site / "logs").iterdir())
    assert logs, f"{site} wrote no log"
    assert {pwd.getpwuid(log.stat().st_uid).pw_name for log in logs} == {site_user(site)}


def make_layout_before_site_users() -> None:
    """This machine as the deploy before site users left it: daemons as www-data, one shared instance
    (impots.json and every secret 0640 root:www-data, logs written by www-data), no site users."""
    from deploy_harness import default_paths, default_settings

    from provisioning.settings import instance_config_json

    for vhost in Path("/etc/apache2/sites-available").glob("*.conf"):
        text = vhost.read_text()
        vhost.write_text(re.sub(r" user=impots-\S+ group=impots-\S+ home=\S+", "", text))
    subprocess.run(["apachectl", "graceful"], check=True)
    settings = default_settings()
    shared = INSTANCE / "impots.json"
    shared.write_text(instance_config_json(settings, default_paths()))
    # That layout's store held the shared keys only (the app there reads it, and refuses unknown keys).
    store = json.loads(STORE.read_text())
    STORE.write_text(json.dumps({key: value for key, value in store.items() if "@" not in key}))
    for path, mode in ((shared, 0o640), (STORE, 0o640), (INSTANCE, 0o750)):
        shutil.chown(path, "root", "www-data")
        path.chmod(mode)
    (INSTANCE / "logs").mkdir(exist_ok=True)
    shutil.chown(INSTANCE / "logs", "www-data", "www-data")
    for site in SITES:
        shutil.rmtree(INSTANCE / site)
    for _ in range(50):  # graceful: the old daemons leave once their requests are done
        if not any(user != {"www-data"} for user in daemon_users().values()):
            break
        subprocess.run(["sleep", "0.2"], check=True)
    for site in SITES:
        subprocess.run(["userdel", site_user(site)], check=True)
        subprocess.run(["groupdel", site_user(site)], check=False)  # userdel may have removed it


def test_upgrade_from_the_shared_instance_keeps_every_value(https: requests.Session, converge_back) -> None:
    before = json.loads(STORE.read_text())
    make_layout_before_site_users()
    old = ImpotsClient(https, f"https://{IMPOTS_SITES[0]}{IMPOTS_ALIAS}{PREFIX_URL}", "json")
    assert old.init_session()[0] == 200, "the emulated old layout does not serve: nothing is tested"
    assert daemon_users()[IMPOTS_SITES[0]] == {"www-data"}

    run = run_deploy(DEFAULT_INVENTORY)

    run.check_ok()
    after = json.loads(STORE.read_text())
    kept = [key for key in before if "@" not in key]
    assert {key: after[key] for key in kept} == {key: before[key] for key in kept}, "a kept secret changed"
    assert set(after) == set(before), "a site's own Flask key or Redis password is missing"
    for shared in (STORE, INSTANCE / "impots.json", INSTANCE / "logs"):
        assert not can_read("www-data", shared), f"www-data still reads {shared}"
    for site in IMPOTS_SITES:
        run_main3_flow(ImpotsClient(https, f"https://{site}{IMPOTS_ALIAS}{PREFIX_URL}", "json"))
    assert daemon_users() == {site: {site_user(site)} for site in SITES}
    rerun = run_deploy(DEFAULT_INVENTORY)
    rerun.check_no_change("second run after the upgrade")
