"""What the plan decides for Redis: a generated ``redis_password`` only where sessions live in Redis and
the backend sets it on the server, the Linux operation's arguments per platform, the memory setting."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import provisioning.plan as plan_module
from provisioning.linux.operations.redis import redis_arguments, status_call
from provisioning.linux.platforms import DEBIAN, RHEL
from provisioning.plan import host_plan
from provisioning.settings import SettingsError, parse_settings

DATE_TIME_ONLY = [{"name": "date-time-server", "kind": "date-time", "alias": "/"}]


@pytest.fixture(autouse=True)
def artifacts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # host_plan makes the local CA: in the test's folder, never in the repository's .artifacts.
    monkeypatch.setattr(plan_module, "ARTIFACTS_DIR", tmp_path / "artifacts")


def plan(platform=DEBIAN, redis_auth: bool = True, **data):
    settings = parse_settings("lab-01", {f"impots_{key}": value for key, value in data.items()}, environ={})
    return host_plan("lab-01", settings, platform, redis_auth=redis_auth)


def test_the_linux_plan_generates_a_redis_password_once_on_the_target() -> None:
    secrets = plan().secrets
    assert "redis_password" in secrets.generate and "redis_password" not in secrets.given


@pytest.mark.parametrize(
    ("redis_auth", "data"),
    [
        (False, {}),  # a backend that does not set it on the server (Windows): AUTH would fail there
        (True, {"with_redissession": False}),  # signed-cookie sessions: the app never talks to Redis
        (True, {"sites": DATE_TIME_ONLY}),  # no impots site at all
    ],
    ids=["backend-without-redis-auth", "cookie-sessions", "no-impots-site"],
)
def test_no_redis_password_where_nothing_would_use_it(redis_auth: bool, data: dict) -> None:
    host = plan(redis_auth=redis_auth, **data)
    assert "redis_password" not in host.secrets.generate
    assert redis_arguments(host, "sysvinit") is None


def test_debian_arguments_restart_through_the_init_script() -> None:
    arguments = redis_arguments(plan(redis_maxmemory_mb=128), "sysvinit")
    assert arguments == {
        "helper": "/opt/impots/bin/impots-helper.pyz",
        "path": "/etc/redis/impots.conf",
        "secrets": "/opt/impots/instance/secrets.json",
        "group": "redis",
        "main_configs": ["/etc/redis/redis.conf"],
        "port": 6379,
        "maxmemory_mb": 128,
        "policy": "volatile-lru",
        "restart": ["service", "redis-server", "restart"],
        "users": [
            {
                "user": "impots-flask-impots-withmysql",
                "secret": "redis_password@flask-impots-withmysql",
                "key_prefix": "impots:flask-impots-withmysql:",
            },
            {
                "user": "impots-flask-impots-withpgres",
                "secret": "redis_password@flask-impots-withpgres",
                "key_prefix": "impots:flask-impots-withpgres:",
            },
        ],
    }
    query = status_call(arguments).get_raw_value()
    # Only the store's key names travel (the helper reads the values on the target), never a value.
    assert "redis_password@flask-impots-withmysql" in query and '"redis_password"' not in query


def test_rhel_arguments_cover_both_config_layouts_and_systemd() -> None:
    arguments = redis_arguments(plan(RHEL), "systemd")
    assert arguments["main_configs"] == ["/etc/redis/redis.conf", "/etc/redis.conf"]
    assert arguments["restart"] == ["systemctl", "restart", "redis"]


def test_the_memory_limit_is_checked_before_anything_changes() -> None:
    assert plan().settings.redis_maxmemory_mb == 64
    assert plan(redis_maxmemory_mb="256").settings.redis_maxmemory_mb == 256  # --data key=value
    with pytest.raises(SettingsError, match="impots_redis_maxmemory_mb"):
        plan(redis_maxmemory_mb=8)


def test_each_impots_site_gets_its_own_flask_key_and_redis_password_on_linux() -> None:
    secrets = plan().secrets
    for site in ("flask-impots-withmysql", "flask-impots-withpgres"):
        assert {f"secret_key@{site}", f"redis_password@{site}"} <= set(secrets.per_site)
    assert not any("date-time-server" in key for key in secrets.per_site), "the example reads no secret"
    assert not any("@" in key for key in secrets.generate), "Windows shares generate: per-site keys apart"
    # The default user's password stays: the deploy's probe and the admin use it, no site gets it.
    assert "redis_password" in secrets.generate


def test_a_given_flask_key_gives_each_site_a_different_derived_one() -> None:
    secrets = plan(secret_key="given-" + "k" * 32).secrets
    mysql, pgres = (
        secrets.given["secret_key@flask-impots-withmysql"],
        secrets.given["secret_key@flask-impots-withpgres"],
    )
    assert len({mysql, pgres, "given-" + "k" * 32}) == 3
    assert plan(secret_key="given-" + "k" * 32).secrets.given["secret_key@flask-impots-withmysql"] == mysql
    assert "secret_key@flask-impots-withmysql" not in secrets.per_site
    assert "'***'" in repr(secrets.given) and mysql not in repr(secrets.given)


def test_windows_keeps_one_shared_instance_without_per_site_secrets() -> None:
    host = plan(platform=replace(DEBIAN, wsgi_daemon=False))
    assert host.secrets.per_site == () and not any(
        "@" in key for key in (*host.secrets.generate, *host.secrets.given)
    )
