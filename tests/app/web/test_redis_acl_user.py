"""Each site as its own Redis ACL user (issue 8 #10): the app logs in with ``redis.user`` and keeps every
key under ``redis.key_prefix``, against a real redis-server whose users are made by the deploy's own
rule builder (``provisioning/remote/redis_acl.py``): a command the app needs and the rule lacks shows up
here as a denied command in Redis' ACL LOG."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from impots.config import ConfigError
from redis_process import redis_process
from test_redis_auth import add_secret
from webclient import WebClient, free_port

from provisioning.remote.redis_acl import default_user_line, site_user_line


@dataclass
class AclRedis:
    port: int
    admin: str
    sites: dict[str, str]  # ACL user -> password

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.admin, socket_connect_timeout=2)


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[AclRedis]:
    """A redis-server with the deploy's default-user line and two site users (a, b), stopped by pid."""
    folder = tmp_path / "redis"
    folder.mkdir()
    server = AclRedis(
        free_port(), secrets.token_urlsafe(24), {f"impots-{s}": secrets.token_urlsafe(24) for s in "ab"}
    )
    rules = [default_user_line(server.admin, (7, 0, 0))]
    rules += [
        site_user_line(user, password, f"impots:{user[7:]}:") for user, password in server.sites.items()
    ]
    with redis_process(folder, server.port, "\n".join(rules) + "\n", server.client().ping):
        yield server


def test_a_site_works_as_its_own_acl_user_within_its_prefix(
    make_app, instance_dir: Path, acl_redis: AclRedis
) -> None:
    add_secret(instance_dir, "redis_password", acl_redis.sites["impots-a"])
    redis_settings = {"port": acl_redis.port, "db": 0, "user": "impots-a", "key_prefix": "impots:a:"}
    app = make_app("mysql", redis=redis_settings)
    client = WebClient(app)
    client.init_session("json")
    client.login("admin", "wrong")  # the throttle's script runs as the site's user
    assert client.last.status_code == 401
    client.start("json")
    client.post(client.url("calculer-impot"), data={"marié": "oui", "enfants": "2", "salaire": "55555"})
    assert client.last.status_code == 200 and client.body()["réponse"]["impôt"] == 2814
    admin = acl_redis.client()
    keys = sorted(key.decode().rsplit(":", 1)[0] for key in admin.keys("*"))
    assert keys == ["impots:a:session", "impots:a:throttle:address"]
    client.get(client.url("fin-session"))  # the session is deleted (DEL) as the site's user
    assert [key.decode().rsplit(":", 1)[0] for key in admin.keys("*")] == ["impots:a:throttle:address"]
    assert admin.acl_log() == [], "the app ran a command (or touched a key) its ACL user may not"
    log = (instance_dir / "logs" / "impots-mysql.log").read_text(encoding="utf-8")
    assert "Redis" not in log and acl_redis.sites["impots-a"] not in log


def test_another_sites_password_or_prefix_fails(make_app, instance_dir: Path, acl_redis: AclRedis) -> None:
    """Site a's settings with b's password cannot log in; with b's prefix every request is refused (503)."""
    add_secret(instance_dir, "redis_password", acl_redis.sites["impots-b"])
    app = make_app(
        "mysql", redis={"port": acl_redis.port, "db": 0, "user": "impots-a", "key_prefix": "impots:a:"}
    )
    client = WebClient(app)
    assert client.get(client.url("init-session", "json")).status_code == 503
    add_secret(instance_dir, "redis_password", acl_redis.sites["impots-a"])
    app = make_app(
        "mysql", redis={"port": acl_redis.port, "db": 0, "user": "impots-a", "key_prefix": "impots:b:"}
    )
    client = WebClient(app)
    client.get(client.url("init-session", "json"))
    assert client.last.status_code == 503
    assert acl_redis.client().keys("impots:b:*") == []


def test_the_course_default_keeps_the_default_user_and_dbms_prefix(make_app, instance_dir: Path) -> None:
    config = make_app("pgres").extensions["impots"].config
    assert config["redis"]["user"] is None and config["redis"]["key_prefix"] == "impots:pgres:"


@pytest.mark.parametrize(
    ("redis_settings", "key"),
    [
        ({"user": "impots a"}, "redis.user"),
        ({"user": ""}, "redis.user"),
        ({"user": 3}, "redis.user"),
        ({"key_prefix": "impots:*:"}, "redis.key_prefix"),
        ({"key_prefix": "impots:a"}, "redis.key_prefix"),
        ({"key_prefix": ""}, "redis.key_prefix"),
        ({"key_prefix": None}, "redis.key_prefix"),
    ],
)
def test_bad_redis_user_or_prefix_is_refused_by_name(
    make_app, instance_dir: Path, redis_settings: dict, key: str
) -> None:
    with pytest.raises(ConfigError, match=f"overrides: {key}: expected"):
        make_app("mysql", redis=redis_settings)
