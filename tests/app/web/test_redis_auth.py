"""Redis with a password (issue 8): the session store and the login throttle both authenticate with
``redis_password`` from secrets.json, against a real redis-server started here with ``requirepass``."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from redis_process import redis_process
from webclient import WebClient, free_port

REDIS_DOWN = (
    "le service de calcul de l'impôt est momentanément indisponible : le serveur de sessions ne répond pas"
)


@dataclass
class PrivateRedis:
    port: int
    password: str

    def client(self, password: str | None = None) -> redis.Redis:
        return redis.Redis(port=self.port, password=password, socket_connect_timeout=2)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server on 127.0.0.1 and a free port, with a password; its configuration file (mode 0600)
    keeps the password off the command line. Stopped by its pid at the end, also when the test fails."""
    folder = tmp_path / "redis"
    folder.mkdir()
    server = PrivateRedis(port=free_port(), password=secrets.token_urlsafe(24))
    ping = server.client(server.password).ping
    with redis_process(folder, server.port, f"requirepass {server.password}\n", ping):
        yield server


def add_secret(instance_dir: Path, key: str, value: str) -> None:
    path = instance_dir / "secrets.json"
    content = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**content, key: value}), encoding="utf-8")


def test_sessions_and_throttle_authenticate_with_the_secret(
    make_app, instance_dir: Path, private_redis: PrivateRedis
) -> None:
    with pytest.raises(redis.AuthenticationError):
        private_redis.client().keys("*")  # the server really wants the password
    add_secret(instance_dir, "redis_password", private_redis.password)
    app = make_app("mysql", redis={"port": private_redis.port, "db": 0})
    client = WebClient(app)
    client.init_session("json")
    client.login("admin", "wrong")
    assert client.last.status_code == 401
    client.start("json")
    client.post(client.url("calculer-impot"), data={"marié": "oui", "enfants": "2", "salaire": "55555"})
    assert client.last.status_code == 200 and client.body()["réponse"]["impôt"] == 2814

    keys = sorted(key.decode() for key in private_redis.client(private_redis.password).keys("*"))
    assert [key.rsplit(":", 1)[0] for key in keys] == [
        "impots:mysql:session",
        "impots:mysql:throttle:address",  # the failed attempt, still counted for the address
    ]
    log = (instance_dir / "logs" / "impots-mysql.log").read_text(encoding="utf-8")
    assert "Redis" not in log and private_redis.password not in log


@pytest.mark.parametrize("password", [None, "not-the-password"], ids=["missing", "wrong"])
def test_without_the_right_password_the_app_answers_503(
    make_app, instance_dir: Path, private_redis: PrivateRedis, password: str | None
) -> None:
    if password is not None:
        add_secret(instance_dir, "redis_password", password)
    app = make_app("mysql", redis={"port": private_redis.port, "db": 0})
    client = WebClient(app)
    response = client.get(client.url("init-session", "json"))
    assert response.status_code == 503 and client.body()["réponse"][0].startswith(REDIS_DOWN)
    log = (instance_dir / "logs" / "impots-mysql.log").read_text(encoding="utf-8")
    assert "[serveur] Le serveur Redis n'est pas disponible" in log
    assert private_redis.password not in log
