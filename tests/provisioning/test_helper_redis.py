"""The helper's Redis commands against a real redis-server of the test's own (a stand-in for the
distribution's: its own redis.conf, port, pid file and a restart script), called as the deploy calls them.

The machine's Redis is never touched: everything lives in the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from pyinfra.api import StringCommand

from provisioning import remote_call

RESTART_SCRIPT = """\
import os, signal, subprocess, sys, time
pidfile, conf = sys.argv[1], sys.argv[2]
try:
    pid = int(open(pidfile).read())
except (OSError, ValueError):
    pid = None
if pid:
    os.kill(pid, signal.SIGTERM)
    while os.path.exists(f"/proc/{pid}") and " Z " not in open(f"/proc/{pid}/stat").read():
        time.sleep(0.05)
subprocess.run(["redis-server", conf], check=True)
"""


SITES = ("a", "b")
USERS = [
    {"user": f"impots-{site}", "secret": f"redis_password@{site}", "key_prefix": f"impots:{site}:"}
    for site in SITES
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class StandIn:
    folder: Path
    port: int
    main: Path  # the "distribution's" redis.conf
    ours: Path  # what the deploy writes (here inside the test folder)
    secrets: Path
    restart: list[str]

    @property
    def pid(self) -> int:
        return int((self.folder / "redis.pid").read_text())

    def client(self, password: str | None = None) -> redis.Redis:
        return redis.Redis(port=self.port, password=password, socket_connect_timeout=2)

    def set_password(self, password: str) -> None:
        values = {"secret_key": "k" * 32, "redis_password": password}
        values.update({f"redis_password@{site}": f"{site}-" + os.urandom(12).hex() for site in SITES})
        self.secrets.write_text(json.dumps(values))

    def site(self, site: str) -> redis.Redis:
        """A client logged in as the site's own ACL user, with its password from the store."""
        secret = json.loads(self.secrets.read_text())[f"redis_password@{site}"]
        return redis.Redis(port=self.port, username=f"impots-{site}", password=secret, driver_info=None)


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(remote_call.build_helper(tmp_path_factory.mktemp("helper")))


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[StandIn]:
    port = free_port()
    main = tmp_path / "redis.conf"
    main.write_text(
        f'# include /path/to/local.conf\nport {port}\nbind 127.0.0.1\ndir {tmp_path}\nsave ""\n'
        f"appendonly no\ndaemonize yes\npidfile {tmp_path / 'redis.pid'}\nlogfile {tmp_path / 'redis.log'}\n"
    )
    main.chmod(0o640)
    script = tmp_path / "restart.py"
    script.write_text(RESTART_SCRIPT)
    secrets = tmp_path / "secrets.json"
    server = StandIn(
        tmp_path, port, main, tmp_path / "etc-redis" / "impots.conf", secrets,
        [sys.executable, str(script), str(tmp_path / "redis.pid"), str(main)],
    )  # fmt: skip
    server.set_password("first-" + os.urandom(12).hex())
    subprocess.run(server.restart, check=True, capture_output=True)
    try:
        wait_until(lambda: server.client().ping())
        yield server
    finally:
        pidfile = tmp_path / "redis.pid"
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), 15)


def wait_until(check, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def run(command: StringCommand, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["sh", "-c", command.get_raw_value()], capture_output=True, text=True, cwd="/")
    if check and result.returncode != 0:
        raise AssertionError(f"{command} exited {result.returncode}: {result.stderr}")
    return result


def status(pyz: str, s: StandIn) -> dict:
    call = remote_call.redis_status(
        pyz, str(s.ours), str(s.secrets), [str(s.main)], s.port, 64, "volatile-lru", USERS
    )
    return json.loads(run(call).stdout)


def apply(pyz: str, s: StandIn, check: bool = True) -> subprocess.CompletedProcess[str]:
    call = remote_call.redis_apply(
        pyz, str(s.ours), str(s.secrets), "redis", ["/nonexistent/redis.conf", str(s.main)], s.port,
        64, "volatile-lru", s.restart, USERS,
    )  # fmt: skip
    return run(call, check=check)


def password(s: StandIn) -> str:
    return json.loads(s.secrets.read_text())["redis_password"]


def test_apply_sets_the_password_and_limits_then_changes_nothing(pyz: str, stand_in: StandIn) -> None:
    before = status(pyz, stand_in)
    assert before == {
        "password": True,
        "file": False,
        "access": None,
        "included": False,
        "server": "open",
        "users": "open",
        "refused": None,
    }
    pid = stand_in.pid

    result = apply(pyz, stand_in)
    assert "Redis restarted" in result.stdout and stand_in.pid != pid
    assert password(stand_in) not in result.stdout + result.stderr
    after = status(pyz, stand_in)
    assert after == {
        "password": True,
        "file": True,
        "access": "root:redis:640",
        "included": True,
        "server": "ours",
        "users": "ours",
        "refused": None,
    }
    info = stand_in.ours.stat()
    text = stand_in.ours.read_text()
    for secret in json.loads(stand_in.secrets.read_text()).values():
        assert secret not in text, "a password in clear in Redis' configuration"
    assert text.count(" #") == 3, "the default user's and each site's password, as SHA-256"
    assert stat.S_IMODE(info.st_mode) == 0o640 and info.st_uid == 0
    assert stat.S_IMODE(stand_in.main.stat().st_mode) == 0o640, "the main file's mode must be kept"

    with pytest.raises(redis.AuthenticationError):
        stand_in.client().get("x")
    client = stand_in.client(password(stand_in))
    assert client.config_get("maxmemory") == {"maxmemory": str(64 * 1024 * 1024)}
    assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "volatile-lru"}
    assert client.config_get("protected-mode") == {"protected-mode": "yes"}

    pid = stand_in.pid
    assert apply(pyz, stand_in).stdout.strip() == "Redis already configured"
    assert stand_in.pid == pid, "Redis restarted although nothing changed"
    assert stand_in.main.read_text().count(f"include {stand_in.ours}") == 1


def test_a_new_password_in_the_secrets_restarts_redis_with_it(pyz: str, stand_in: StandIn) -> None:
    apply(pyz, stand_in)
    stand_in.set_password('sp ace"quote\\' + os.urandom(8).hex())  # survives Redis' config quoting
    assert status(pyz, stand_in)["file"] is False
    apply(pyz, stand_in)
    assert stand_in.client(password(stand_in)).ping()
    assert status(pyz, stand_in)["server"] == "ours"


def test_an_include_no_longer_last_is_moved_to_the_end(pyz: str, stand_in: StandIn) -> None:
    apply(pyz, stand_in)
    with stand_in.main.open("a") as handle:
        handle.write("maxmemory 1gb\n")  # would win over ours
    assert status(pyz, stand_in)["included"] is False
    apply(pyz, stand_in)
    lines = [line for line in stand_in.main.read_text().splitlines() if line and not line.startswith("#")]
    assert lines[-1] == f"include {stand_in.ours}" and lines.count(lines[-1]) == 1
    assert stand_in.client(password(stand_in)).config_get("maxmemory") == {"maxmemory": str(64 * 1024 * 1024)}


def test_a_restarted_redis_without_our_settings_is_restarted(pyz: str, stand_in: StandIn) -> None:
    """An interrupted run: the files are right but the running Redis never read them."""
    apply(pyz, stand_in)
    stand_in.client(password(stand_in)).acl_deluser("impots-b")
    assert status(pyz, stand_in)["users"] == "other"
    assert "Redis restarted" in apply(pyz, stand_in).stdout
    assert status(pyz, stand_in)["users"] == "ours" and stand_in.site("b").ping()


def test_without_the_secret_nothing_is_written(pyz: str, stand_in: StandIn) -> None:
    stand_in.secrets.write_text(json.dumps({"secret_key": "k" * 32}))
    assert status(pyz, stand_in)["password"] is False
    result = apply(pyz, stand_in, check=False)
    assert result.returncode == 1 and "has no redis_password" in result.stderr
    assert not stand_in.ours.exists() and "include" not in stand_in.main.read_text().replace("# include", "")


def test_each_site_user_reaches_only_its_own_keys(pyz: str, stand_in: StandIn) -> None:
    apply(pyz, stand_in)
    a, b = stand_in.site("a"), stand_in.site("b")
    assert a.set("impots:a:session:1", "x", ex=60) and a.get("impots:a:session:1") == b"x"
    assert b.set("impots:b:session:1", "y", ex=60)
    for denied in (
        lambda: a.get("impots:b:session:1"),
        lambda: a.set("impots:b:session:1", "forged"),
        lambda: a.delete("impots:b:session:1"),
        lambda: a.keys("*"),
        lambda: a.flushall(),
        lambda: a.config_get("requirepass"),
        lambda: a.acl_list(),
        lambda: a.eval("return redis.call('GET', KEYS[1])", 1, "impots:b:session:1"),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            denied()
    assert stand_in.client(password(stand_in)).get("impots:b:session:1") == b"y"
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=stand_in.port, username="impots-a", password=password(stand_in)).ping()


def test_a_new_site_password_rewrites_the_file_and_restarts(pyz: str, stand_in: StandIn) -> None:
    apply(pyz, stand_in)
    values = json.loads(stand_in.secrets.read_text())
    stand_in.secrets.write_text(json.dumps({**values, "redis_password@a": "new-" + os.urandom(8).hex()}))
    assert status(pyz, stand_in)["file"] is False
    assert "Redis restarted" in apply(pyz, stand_in).stdout
    assert stand_in.site("a").ping() and status(pyz, stand_in)["users"] == "ours"


def test_a_site_without_its_password_in_the_store_stops_before_any_change(
    pyz: str, stand_in: StandIn
) -> None:
    values = json.loads(stand_in.secrets.read_text())
    del values["redis_password@b"]
    stand_in.secrets.write_text(json.dumps(values))
    assert status(pyz, stand_in)["password"] is False
    result = apply(pyz, stand_in, check=False)
    assert result.returncode == 1 and "has no redis_password@b" in result.stderr
    assert not stand_in.ours.exists()
