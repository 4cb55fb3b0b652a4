"""Redis after the deploy (issue 8, point 1): the app's generated password, loopback only, a memory limit.

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
    for dbms in ("mysql", "pgres"):
        assert any(key.startswith(f"impots:{dbms}:session:") for key in keys), keys
        assert any(key.startswith(f"impots:{dbms}:throttle:") for key in keys), keys


def test_a_second_deploy_changes_nothing_and_keeps_redis_running(deployed) -> None:
    pid = redis_pid()
    run_deploy(DEFAULT_INVENTORY).check_ok().check_no_change("second run with Redis configured")
    assert redis_pid() == pid, "Redis was restarted by a run that changed nothing"


def test_a_server_that_lost_its_password_gets_it_back(deployed, redis_password: str, converge_back) -> None:
    """As after a run killed between writing the file and restarting Redis: the deploy notices, restarts."""
    admin_client(redis_password).config_set("requirepass", "")
    assert admin_client(None).ping()
    run = run_deploy(DEFAULT_INVENTORY).check_ok()
    changed = run.changed_operations()
    assert len(changed) == 1 and "Redis" in changed[0], f"{changed}\n{run.tail()}"
    with pytest.raises(redis.AuthenticationError):
        admin_client(None).ping()
    assert admin_client(redis_password).ping()
