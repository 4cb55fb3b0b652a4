"""One system user per site (Linux): user names, each site's instance layout and secrets, and the
helper's copy of a site's own secrets from the deploy's store (run for real, as root)."""

from __future__ import annotations

import grp
import json
import stat
from pathlib import Path

import pytest

import provisioning.plan as plan_module
from provisioning import remote_call
from provisioning.linux import site_layout
from provisioning.linux.platforms import DEBIAN
from provisioning.plan import host_plan
from provisioning.settings import SettingsError, Site, parse_settings
from provisioning.site_users import MAX_USER_NAME, site_user, site_users
from tests.provisioning.test_helper import pyz, run, write_secrets  # noqa: F401 (pyz: a fixture)


@pytest.fixture(autouse=True)
def artifacts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(plan_module, "ARTIFACTS_DIR", tmp_path / "artifacts")


ROOT_OWNED = {"user": "root", "group": "root", "mode": "755"}


def linux_plan(**data):
    settings = parse_settings("lab-01", {f"impots_{key}": value for key, value in data.items()}, environ={})
    return host_plan("lab-01", settings, DEBIAN, redis_auth=True)


def test_user_names_are_derived_from_the_site_name() -> None:
    assert site_user("flask-impots-withmysql") == "impots-flask-impots-withmysql"
    assert site_user("Date-Time.example") == "impots-date-time-example"
    long = site_user("a-very-long-site-name.lab.example.org")
    assert len(long) == MAX_USER_NAME and long.startswith("impots-a-very-long-site-")
    assert long == site_user("a-very-long-site-name.lab.example.org"), "not deterministic"
    assert long != site_user("a-very-long-site-name.lab.example.net")


def test_two_sites_sharing_a_user_are_refused_by_name() -> None:
    sites = [Site("lab.example", "date-time", None, "/"), Site("lab-example", "impots", "mysql", "/x")]
    with pytest.raises(
        SettingsError, match="'lab.example' and 'lab-example' would share .*impots-lab-example"
    ):
        site_users(sites)


def test_each_site_gets_only_its_own_secrets_and_folder() -> None:
    plan = linux_plan()
    instances = {i.site.name: i for i in site_layout.plan_site_instances(plan)}
    assert instances["flask-impots-withmysql"].secret_keys == {
        "secret_key": "secret_key@flask-impots-withmysql",
        "mysql_password": "mysql_password",
        "redis_password": "redis_password@flask-impots-withmysql",
    }
    assert instances["flask-impots-withpgres"].secret_keys == {
        "secret_key": "secret_key@flask-impots-withpgres",
        "pgres_password": "pgres_password",
        "redis_password": "redis_password@flask-impots-withpgres",
    }
    assert instances["date-time-server"].secret_keys == {}
    mysql = instances["flask-impots-withmysql"]
    assert mysql.folder == "/opt/impots/instance/flask-impots-withmysql"
    assert mysql.app_instance == "/opt/impots/app/instance/flask-impots-withmysql"
    (config,) = [f for f in site_layout.instance_config_files(plan, (mysql,))]
    assert (config["path"], config["group"], config["mode"]) == (
        "/opt/impots/instance/flask-impots-withmysql/impots.json",
        "impots-flask-impots-withmysql",
        "640",
    )
    content = json.loads(config["content"])
    assert content["secrets_file"] == "/opt/impots/app/instance/flask-impots-withmysql/secrets.json"
    assert content["log_file"] == "/opt/impots/app/instance/flask-impots-withmysql/logs/impots-{dbms}.log"
    # Its own Redis ACL user (named as its system user) and the only keys that user may touch.
    assert content["redis"]["user"] == "impots-flask-impots-withmysql"
    assert content["redis"]["key_prefix"] == "impots:flask-impots-withmysql:"


def test_folders_replace_the_shared_logs_with_one_per_site() -> None:
    plan = linux_plan()
    instances = site_layout.plan_site_instances(plan)
    folders = {
        f["path"]: (f["user"], f["group"], f["mode"])
        for f in site_layout.instance_folders(
            plan, instances, lambda access, folder: {"user": "root", "group": "root", "mode": "755"}
        )
    }
    assert "/opt/impots/instance/logs" not in folders
    assert folders["/opt/impots/instance/date-time-server"] == ("root", "impots-date-time-server", "750")
    assert folders["/opt/impots/instance/flask-impots-withpgres/logs"] == (
        "impots-flask-impots-withpgres",
        "impots-flask-impots-withpgres",
        "750",
    )


def test_helper_copies_only_a_sites_keys_and_refuses_a_missing_one(pyz: str, tmp_path: Path) -> None:  # noqa: F811
    store, site = tmp_path / "store.json", tmp_path / "site.json"
    write_secrets(store, {"secret_key": "k", "mysql_password": "m", "pgres_password": "p"})
    group = grp.getgrgid(0).gr_name
    run(remote_call.site_secrets_copy(pyz, str(store), str(site), group, ["secret_key", "mysql_password"]))
    assert json.loads(site.read_text()) == {"secret_key": "k", "mysql_password": "m"}
    assert stat.S_IMODE(site.stat().st_mode) == 0o640
    failed = run(
        remote_call.site_secrets_copy(pyz, str(store), str(site), group, ["redis_password"]), check=False
    )
    assert failed.returncode == 1 and "has no redis_password" in failed.stderr
    assert json.loads(site.read_text()) == {"secret_key": "k", "mysql_password": "m"}, "changed on error"
