"""Redis after the deploy (issue 8, points 1 and 10): the deploy's generated password for the default user,
one ACL user per site (its own password, its own keys, the app's commands), loopback only, a memory limit.

Before the fix any local user (``nobody`` here) listed and read every session; now Redis answers NOAUTH to
whoever lacks the password, which lives only in root/Apache-readable files and on no command line.
"""

from __future__ import annotations

import grp
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import redis
import requests
from deploy_harness import (
    DEFAULT_INVENTORY,
    IMPOTS_ALIAS,
    IMPOTS_SITES,
    PREFIX_URL,
    REPO,
    default_paths,
    run_deploy,
)
from impots_client import ImpotsClient

from provisioning.site_users import site_user

pytestmark = pytest.mark.deploy

REDIS_PORT = 6379
OUR_CONFIG = Path("/etc/redis/impots.conf")
MAIN_CONFIG = Path("/etc/redis/redis.conf")
# Where a leaked copy could sit on this machine (the controller's .artifacts included).
SCANNED = (
    "/etc",
    "/opt",
    "/var/lib/impots-provisioning",
    "/var/log",
    "/tmp",
    "/run",
    str(REPO / ".artifacts"),
)
SCAN_LIMIT = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def redis_password(deployed) -> str:
    values = json.loads(Path(default_paths().secrets_file).read_text())
    password = values.get("redis_password")
    assert isinstance(password, str) and len(password) >= 32, "the deploy generated no redis_password"
    return password


def admin_client(password: str | None) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=REDIS_PORT, password=password, socket_connect_timeout=3)


def redis_pid() -> int:
    return int(Path("/run/redis/redis-server.pid").read_text())


def as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", *command], capture_output=True, text=True, cwd="/"
    )


def test_redis_refuses_a_local_user_without_the_password(deployed, redis_password: str) -> None:
    for command in (["PING"], ["KEYS", "*"], ["GET", "impots:mysql:session:x"]):
        result = as_nobody("redis-cli", "-h", "127.0.0.1", "-p", str(REDIS_PORT), *command)
        assert "NOAUTH" in result.stdout + result.stderr, f"nobody ran {command}: {result.stdout!r}"
    with pytest.raises(redis.AuthenticationError):
        admin_client(None).keys("*")
    # nobody cannot read the password either, from our Redis file or the app's secrets.
    for path in (OUR_CONFIG, Path(default_paths().secrets_file)):
        result = as_nobody("cat", str(path))
        assert result.returncode != 0 and redis_password not in result.stdout, f"nobody reads {path}"


def test_the_config_file_is_0640_root_redis_and_included_last(deployed) -> None:
    info = OUR_CONFIG.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640, oct(info.st_mode)
    assert (info.st_uid, info.st_gid) == (0, grp.getgrnam("redis").gr_gid)
    directives = [
        line.strip() for line in MAIN_CONFIG.read_text().splitlines() if line.strip()[:1] not in ("", "#")
    ]
    assert directives[-1] == f"include {OUR_CONFIG}" and directives.count(directives[-1]) == 1


def test_the_running_server_has_the_limits(deployed, redis_password: str) -> None:
    client = admin_client(redis_password)
    assert client.config_get("maxmemory") == {"maxmemory": str(64 * 1024 * 1024)}
    assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "volatile-lru"}
    assert client.config_get("protected-mode") == {"protected-mode": "yes"}
    assert client.config_get("bind") == {"bind": "127.0.0.1"}


def world_readable_files_containing(secret: str) -> list[str]:
    found = []
    needle = secret.encode()
    for top in SCANNED:
        for folder, _, names in os.walk(top):
            for name in names:
                path = os.path.join(folder, name)
                try:
                    info = os.lstat(path)
                    if not stat.S_ISREG(info.st_mode) or not info.st_mode & stat.S_IROTH:
                        continue
                    if info.st_size <= SCAN_LIMIT and needle in Path(path).read_bytes():
                        found.append(path)
                except OSError:
                    continue
    return found


def test_the_password_is_on_no_command_line_nor_in_a_world_readable_file(
    deployed, redis_password: str
) -> None:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert "redis-server" in ps, "positive control: ps shows the Redis server"
    assert redis_password not in ps
    assert deployed.command_lines.lines_containing(redis_password) == [], "seen on a command line"
    assert redis_password not in deployed.run.stdout + deployed.run.stderr
    assert world_readable_files_containing(redis_password) == []


def test_the_app_authenticates_for_sessions_and_the_login_throttle(
    https: requests.Session, redis_password: str
) -> None:
    admin_client(redis_password).acl_log_reset()  # denials of other tests (the site users' probe) out
    for site in IMPOTS_SITES:
        client = ImpotsClient(https, f"https://{site}{IMPOTS_ALIAS}{PREFIX_URL}", "json")
        assert client.init_session()[0] == 200
        assert client.authenticate("admin", "not-the-password")[0] == 401  # counted by the throttle
        status, body = client.authenticate("admin", "admin")
        assert (status, int(body["état"])) == (200, 200), body
        status, body = client.calculate_many([{"marié": "oui", "enfants": 2, "salaire": 55555}])
        assert (status, int(body["état"])) == (200, 1500), body
        assert body["réponse"][0]["impôt"] == 2814
    keys = {key.decode() for key in admin_client(redis_password).keys("impots:*")}
    for site in IMPOTS_SITES:  # each site under its own prefix, the one its ACL user may use
        assert any(key.startswith(f"impots:{site}:session:") for key in keys), keys
        assert any(key.startswith(f"impots:{site}:throttle:") for key in keys), keys
    assert admin_client(redis_password).acl_log() == [], "a site's app was refused a command or a key"


def test_a_second_deploy_changes_nothing_and_keeps_redis_running(deployed) -> None:
    pid = redis_pid()
    run_deploy(DEFAULT_INVENTORY).check_ok().check_no_change("second run with Redis configured")
    assert redis_pid() == pid, "Redis was restarted by a run that changed nothing"


def test_a_server_that_lost_its_password_gets_it_back(deployed, redis_password: str, converge_back) -> None:
    """As after a run killed between writing the file and restarting Redis: the deploy notices, restarts."""
    admin = admin_client(redis_password)
    admin.execute_command("ACL", "SETUSER", "default", "nopass")
    admin.execute_command("ACL", "DELUSER", site_user(IMPOTS_SITES[1]))
    assert admin_client(None).ping()
    run = run_deploy(DEFAULT_INVENTORY).check_ok()
    changed = run.changed_operations()
    assert len(changed) == 1 and "Redis" in changed[0], f"{changed}\n{run.tail()}"
    with pytest.raises(redis.AuthenticationError):
        admin_client(None).ping()
    assert admin_client(redis_password).ping()


# Run as a site's system user with the venv's Python: reads that site's own impots.json and secrets.json
# (as its daemons do) and tries every access against Redis; prints one JSON object of outcomes.
SITE_PROBE = r"""
import json, sys
import redis
folder, other_prefix, other_user = sys.argv[1], sys.argv[2], sys.argv[3]
config = json.load(open(folder + "/impots.json"))["redis"]
password = json.load(open(folder + "/secrets.json"))["redis_password"]
own = config["key_prefix"] + "session:probe"
GET_SCRIPT = "return redis.call('GET', KEYS[1])"
client = redis.Redis(port=config["port"], username=config["user"], password=password, driver_info=None)
def attempt(action):
    try:
        action()
        return "allowed"
    except redis.exceptions.NoPermissionError:
        return "denied"
    except redis.AuthenticationError:
        return "refused"
def login(**kwargs):
    redis.Redis(port=config["port"], password=password, driver_info=None, **kwargs).ping()
print(json.dumps({
    "own write": attempt(lambda: client.set(own, "x", ex=60)),
    "own read": attempt(lambda: client.get(own)),
    "other read": attempt(lambda: client.get(other_prefix + "session:probe")),
    "other write": attempt(lambda: client.set(other_prefix + "session:probe", "forged")),
    "other delete": attempt(lambda: client.delete(other_prefix + "session:probe")),
    "other by script": attempt(lambda: client.eval(GET_SCRIPT, 1, other_prefix + "session:probe")),
    "keys": attempt(lambda: client.keys("*")),
    "scan": attempt(lambda: client.scan()),
    "flushall": attempt(lambda: client.flushall()),
    "config": attempt(lambda: client.config_get("*")),
    "acl": attempt(lambda: client.acl_list()),
    "client list": attempt(lambda: client.client_list()),
    "info": attempt(lambda: client.info()),
    "as the other site": attempt(lambda: login(username=other_user)),
    "as default": attempt(lambda: login()),
}))
"""


@pytest.mark.parametrize("site", IMPOTS_SITES)
def test_a_site_user_reaches_only_its_own_keys_and_the_apps_commands(
    deployed, redis_password: str, site: str
) -> None:
    other = next(name for name in IMPOTS_SITES if name != site)
    admin = admin_client(redis_password)
    admin.set(f"impots:{other}:session:probe", "theirs", ex=60)
    result = subprocess.run(
        ["runuser", "-u", site_user(site), "--", f"{default_paths().venv}/bin/python", "-c", SITE_PROBE,
         f"/opt/impots/instance/{site}", f"impots:{other}:", site_user(other)],
        capture_output=True, text=True, cwd="/", check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outcomes = json.loads(result.stdout)
    assert outcomes.pop("own write") == outcomes.pop("own read") == "allowed", "positive control"
    assert outcomes.pop("as the other site") == outcomes.pop("as default") == "refused"
    assert set(outcomes.values()) == {"denied"}, outcomes
    assert admin.get(f"impots:{other}:session:probe") == b"theirs"


def test_the_config_file_holds_no_password_in_clear(deployed) -> None:
    store = json.loads(Path(default_paths().secrets_file).read_text())
    text = OUR_CONFIG.read_text()
    leaked = [key for key, value in store.items() if value in text]
    assert leaked == [], f"Redis' file holds {leaked} in clear"
    hashed = [line.split()[1] for line in text.splitlines() if line.startswith("user ")]
    assert hashed == ["default", *(site_user(site) for site in IMPOTS_SITES)], hashed
    assert not OUR_CONFIG.stat().st_mode & stat.S_IROTH


def make_shared_redis_password_layout(store: dict[str, str]) -> None:
    """This machine as the deploy before per-site Redis users left it: Redis' file with the one password
    in clear (requirepass), no site user in Redis, no per-site key in the store, every site's secrets.json
    holding the shared Flask key and Redis password, its impots.json no Redis user (course prefixes)."""
    OUR_CONFIG.write_text(
        "bind 127.0.0.1\nprotected-mode yes\n"
        f'requirepass "{store["redis_password"]}"\nmaxmemory 64mb\nmaxmemory-policy volatile-lru\n'
    )
    subprocess.run(["service", "redis-server", "restart"], check=True, capture_output=True)
    old = {key: value for key, value in store.items() if "@" not in key}
    Path(default_paths().secrets_file).write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")
    for site, dbms in zip(IMPOTS_SITES, ("mysql", "pgres"), strict=True):
        folder = Path("/opt/impots/instance") / site
        keys = ("secret_key", f"{dbms}_password", "redis_password")
        (folder / "secrets.json").write_text(json.dumps({key: old[key] for key in keys}))
        config = json.loads((folder / "impots.json").read_text())
        config["redis"] = {k: v for k, v in config["redis"].items() if k not in ("user", "key_prefix")}
        (folder / "impots.json").write_text(json.dumps(config))


def test_upgrade_from_the_shared_redis_password_keeps_every_value(
    https: requests.Session, redis_password: str, converge_back
) -> None:
    store_path = Path(default_paths().secrets_file)
    before = json.loads(store_path.read_text())
    make_shared_redis_password_layout(before)
    assert admin_client(redis_password).acl_users() == ["default"], "the emulated old layout has site users"

    run_deploy(DEFAULT_INVENTORY).check_ok()

    after = json.loads(store_path.read_text())
    old_keys = [key for key in before if "@" not in key]
    assert {key: after[key] for key in old_keys} == {key: before[key] for key in old_keys}, (
        "a kept value changed"
    )
    assert set(after) == set(before), "a per-site secret is missing after the upgrade"
    assert sorted(admin_client(redis_password).acl_users()) == sorted(
        ["default", *map(site_user, IMPOTS_SITES)]
    )
    test_the_app_authenticates_for_sessions_and_the_login_throttle(https, redis_password)
    run_deploy(DEFAULT_INVENTORY).check_ok().check_no_change("second run after the upgrade")
